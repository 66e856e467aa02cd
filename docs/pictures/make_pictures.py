"""Draw the README's pictures from the project's own images (nothing from outside the repo).

- ``presenters.jpg``: the shipped synthetic presenters, side by side (head and shoulders);
- ``before_after.jpg``: a visitor (scikit-image's astronaut, a public-domain NASA portrait
  that ships with scikit-image) | what the kiosk shows: the avatar engine driven by that
  frame, with the first presenter and the "digital human" label, as the pipeline sends it;
- ``turns.jpg`` (docs/engines.md): each presenter turned by the rig, driven by a synthetic
  face (the tests' canonical landmarks turned in 3-D): frontal, 25° and 40° of yaw, and
  -35° of yaw with 15° of pitch.

Deterministic; run it again when the presenters or the avatar engine change:

    python docs/pictures/make_pictures.py
"""

import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OUT = Path(__file__).resolve().parent
HEIGHT = 300  # pixels of each small picture
QUALITY = [cv2.IMWRITE_JPEG_QUALITY, 86]


def presenters_strip() -> np.ndarray:
    from media_engine.engines import presenter as pc

    tiles = []
    for slug in pc.SHIPPED:
        image, face = pc.flat_presenter(slug)
        cx = int(face[:, 0].mean())
        tile = image[20:720, cx - 350 : cx + 350]
        tiles.append(cv2.resize(tile, (HEIGHT, HEIGHT), interpolation=cv2.INTER_AREA))
    return np.hstack(tiles)


def visitor_frame() -> np.ndarray:
    from skimage import data

    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    return cv2.resize(astronaut, (640, 480), interpolation=cv2.INTER_AREA)


def before_after() -> np.ndarray:
    from media_engine.engines import presenter as pc
    from media_engine.engines.avatar import AvatarEngine
    from media_engine.label import apply_label
    from media_engine.perception import Perceiver

    frame = visitor_frame()
    perceiver = Perceiver()
    face = None
    for i in range(10):  # the tracker settles; the avatar learns the visitor's neutral
        face = perceiver.process(frame, timestamp=i / 15) or face
    engine = AvatarEngine(pc.load_presenter(pc.DEFAULT_PRESENTER))  # the layered rig
    out = frame
    for _ in range(10):
        out = engine.render(frame, face)
    out = np.ascontiguousarray(out).copy()
    apply_label(out)
    pair = [cv2.resize(x, (HEIGHT * 4 // 3, HEIGHT), interpolation=cv2.INTER_AREA)
            for x in (frame, out)]  # fmt: skip
    gap = np.full((HEIGHT, 8, 3), 255, np.uint8)
    return np.hstack([pair[0], gap, pair[1]])


def turns_strip() -> np.ndarray:
    from media_engine.engines import presenter as pc
    from media_engine.engines.avatar import AvatarEngine
    from tests.engine_helpers import placed_landmarks, tracked, turned_landmarks

    width, height = 640, 480
    frame = np.zeros((height, width, 3), np.uint8)
    rest = placed_landmarks(width, height, 160)
    tiles = []
    for slug in pc.SHIPPED:
        for yaw, pitch in ((0, 0), (25, 0), (40, 0), (-35, 15)):
            engine = AvatarEngine(pc.load_presenter(slug))
            for _ in range(8):  # the neutral
                engine.render(frame, tracked(rest))
            for _ in range(45):  # a held turn
                out = engine.render(frame, tracked(turned_landmarks(rest, yaw, pitch)))
            tile = out[20:420, 170:470]
            tiles.append(cv2.resize(tile, (HEIGHT * 3 // 4, HEIGHT), interpolation=cv2.INTER_AREA))
    return np.hstack(tiles)


def main() -> None:
    cv2.imwrite(str(OUT / "presenters.jpg"), presenters_strip(), QUALITY)
    cv2.imwrite(str(OUT / "before_after.jpg"), before_after(), QUALITY)
    cv2.imwrite(str(OUT / "turns.jpg"), turns_strip(), QUALITY)
    for name in ("presenters.jpg", "before_after.jpg", "turns.jpg"):
        print(name, (OUT / name).stat().st_size, "bytes")


if __name__ == "__main__":
    main()
