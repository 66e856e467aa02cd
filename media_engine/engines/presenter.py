"""A presenter: the layered 2.5-D rig the avatar engine shows (docs/engines.md, "avatar").

A presenter is a backdrop, a torso that never moves with the head, a neck that bends, and a
head (with hair behind and in front of it) that turns about the neck pivot. Shipped
presenters are folders of layers under ``models/assets/presenters/<slug>/``, each file in
``models/manifest.json`` as ``presenter_<slug>_<part>`` and checked against its sha256 before
use (the format is in ``PRESENTER_FORMAT.md``'s table, repeated in docs/engines.md and
docs/presenters.md); an Identity row names one by its asset ``presenter_<slug>``. The
presenter's flat picture (engines that take a portrait) is the rig at rest with its face
landmarks (``flat_presenter``). A presenter photo (a real person with identity consent, or the
default avatar's portrait) becomes the same rig with ``presenter_from_photo``: its layers are
cut along its face-mesh landmarks and the backdrop is filled in where the person was.

This is the one module that knows presenters: the shipped list, the asset names, the files,
the rig and its flat picture.
"""

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from media_engine.assets import AssetError, cached_verified_path, load_manifest
from media_engine.engines import face_regions as fr
from media_engine.engines.errors import EngineSetupError

# The first is the default for new kiosks and the demo kiosk.
SHIPPED = ("mei", "daniel")
DEFAULT_PRESENTER = SHIPPED[0]
# Back to front; "mouth" is drawn by the rig only where the lips part.
LAYERS = ("background", "hair_back", "neck", "torso", "head", "hair_front")
PARTS_RGBA = ("hair_back", "torso", "neck", "head", "hair_front", "mouth")
PARTS = (*LAYERS, "mouth", "face", "rig")
CANVAS = (1280, 720)  # width, height
# Identity rows name a shipped presenter by their ``asset``: ``presenter_<slug>`` (as the
# presenters' data migration writes it; ``asset_name``) or ``presenter:<slug>``.
ASSET_PREFIX = "presenter_"
ASSET_PREFIXES = (ASSET_PREFIX, "presenter:")


class PresenterError(EngineSetupError, AssetError):
    """Not a shipped presenter, or its files are missing, unreadable or not in the rig
    format (an engine setup error and an asset error both)."""


@dataclass(frozen=True)
class PresenterRig:
    """All layers share one canvas (H×W). RGBA layers are BGRA uint8 (OpenCV's order)."""

    slug: str
    display_name: str
    background: np.ndarray  # H×W×3 BGR
    hair_back: np.ndarray  # H×W×4
    torso: np.ndarray
    neck: np.ndarray
    head: np.ndarray
    hair_front: np.ndarray
    mouth: np.ndarray | None  # H×W×4 mouth interior, or None (painted procedurally)
    face: np.ndarray  # (468, 3) float32 canvas pixels, MediaPipe's z sign
    neck_pivot: np.ndarray  # (2,) canvas pixels

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the canvas."""
        return self.background.shape[1], self.background.shape[0]

    def at_rest(self) -> np.ndarray:
        """The layers composited in the rig's order with the head at rest (BGR)."""
        return compose({name: getattr(self, name) for name in LAYERS})


def compose(layers: dict[str, np.ndarray]) -> np.ndarray:
    """The layers at rest, back to front (``LAYERS``), as one BGR picture."""
    out = layers["background"][..., :3].astype(np.float32)
    for name in LAYERS[1:]:
        layer = layers[name].astype(np.float32)
        alpha = layer[..., 3:] / 255.0
        out = out * (1 - alpha) + layer[..., :3] * alpha
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def asset_name(slug: str) -> str:
    """The ``Identity.asset`` of a shipped presenter."""
    return ASSET_PREFIX + slug


def slug_of(asset: str | None) -> str | None:
    """The presenter slug an Identity's ``asset`` names (shipped or not), or None when it
    names something else."""
    for prefix in ASSET_PREFIXES:
        if asset and asset.startswith(prefix) and len(asset) > len(prefix):
            return asset[len(prefix) :]
    return None


def is_shipped(slug: str | None) -> bool:
    """Whether ``models/manifest.json`` lists a presenter of that slug."""
    return bool(slug) and f"{ASSET_PREFIX}{slug}_head" in load_manifest()


def part_path(slug: str, part: str) -> Path:
    """The checked path of one file of a shipped presenter."""
    if part not in PARTS:
        raise PresenterError(f"{part!r} is not a presenter part (one of {', '.join(PARTS)})")
    if not is_shipped(slug):
        raise PresenterError(f"{slug!r} is not a shipped presenter (see models/manifest.json)")
    try:
        return cached_verified_path(f"{ASSET_PREFIX}{slug}_{part}")
    except PresenterError:
        raise
    except AssetError as exc:
        raise PresenterError(f"presenter {slug!r}: {exc}") from exc


def read_layer(slug: str, part: str) -> np.ndarray:
    """A layer as stored: BGR for the background, BGRA for the others."""
    flags = cv2.IMREAD_COLOR if part == "background" else cv2.IMREAD_UNCHANGED
    image = cv2.imread(str(part_path(slug, part)), flags)
    if image is None:
        raise PresenterError(f"presenter {slug!r}: {part}.png is not a readable image")
    return image


def read_rig(slug: str) -> dict:
    return json.loads(part_path(slug, "rig").read_text(encoding="utf-8"))


def read_face(slug: str) -> np.ndarray:
    """The head's 468 landmarks (float32, canvas pixels)."""
    return np.load(part_path(slug, "face")).astype(np.float32)


def _read_rgba(path: Path, shape: tuple[int, int]) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None or image.ndim != 3 or image.shape[2] != 4:
        raise PresenterError(f"{path} is not a readable RGBA PNG")
    if image.shape[:2] != shape:
        raise PresenterError(
            f"{path} is {image.shape[1]}x{image.shape[0]}, not the backdrop's size"
        )
    return image


def read_presenter(folder: Path, paths: dict[str, Path] | None = None) -> PresenterRig:
    """A presenter from its files (``paths`` per part name; default: ``folder/<part>.*``)."""
    paths = paths or {}

    def path(part: str, ext: str) -> Path:
        return paths.get(part, folder / f"{part}.{ext}")

    background = cv2.imread(str(path("background", "png")), cv2.IMREAD_COLOR)
    if background is None:
        raise PresenterError(f"{path('background', 'png')} is not a readable image")
    shape = background.shape[:2]
    layers = {}
    for part in PARTS_RGBA:
        if part == "mouth" and not path(part, "png").is_file():
            layers[part] = None
            continue
        layers[part] = _read_rgba(path(part, "png"), shape)
    try:
        face = np.load(path("face", "npy")).astype(np.float32)
        rig = json.loads(path("rig", "json").read_text(encoding="utf-8"))
        pivot = np.asarray(rig["neck_pivot"], np.float64)
    except (OSError, ValueError, KeyError) as exc:
        raise PresenterError(f"presenter {folder.name}: bad face.npy or rig.json ({exc})") from exc
    if face.shape != (468, 3) or not np.isfinite(face).all() or pivot.shape != (2,):
        raise PresenterError(f"presenter {folder.name}: face.npy must be (468, 3), pivot [x, y]")
    name = rig.get("display_name", {})
    display = name.get("en", folder.name) if isinstance(name, dict) else str(name)
    return PresenterRig(rig.get("slug", folder.name), display, background, face=face,
                        neck_pivot=pivot, **layers)  # fmt: skip


@functools.cache
def load_presenter(slug: str) -> PresenterRig:
    """A shipped presenter, every file checked against ``models/manifest.json``."""
    paths = {}
    for part in ("background", "face", "rig", *PARTS_RGBA):
        try:
            paths[part] = part_path(slug, part)
        except PresenterError:
            if part != "mouth" or not is_shipped(slug):
                raise
    return read_presenter(Path(paths["background"]).parent, paths)


@functools.cache
def flat_presenter(slug: str) -> tuple[np.ndarray, np.ndarray]:
    """(BGR picture at rest, its 468 landmarks) of a shipped presenter (read-only arrays):
    the rig at rest, for engines that take a flat portrait."""
    rig = load_presenter(slug)
    image, face = rig.at_rest(), rig.face.copy()
    image.flags.writeable = False
    face.flags.writeable = False
    return image, face


# Cutting a photo into layers, in shares of the face's width (fw) and height (fh).
HEAD_SIDES, HEAD_TOP = 1.32, 1.5  # the head layer: the face oval grown (ears, hair)
NECK_HALF_WIDTH = 0.36  # × fw
COLLAR_BELOW_CHIN = 0.35  # × fh: where the torso layer starts
FEATHER = 0.04  # × fh: soft edges of the cut


def _oval_geometry(lm: np.ndarray) -> tuple[np.ndarray, float, float]:
    oval = lm[fr.FACE_OVAL, :2]
    centre = (oval.min(0) + oval.max(0)) / 2
    return centre, float(np.ptp(oval[:, 0])), float(np.ptp(oval[:, 1]))


def _head_mask(lm: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The head: the face oval grown to the sides and upwards (hair), ending at the jaw."""
    centre, _, _ = _oval_geometry(lm)
    v = lm[fr.FACE_OVAL, :2] - centre
    dir_y = v[:, 1] / (np.linalg.norm(v, axis=1) + 1e-6)
    up, down = np.clip(-dir_y, 0, 1), np.clip(dir_y, 0, 1)
    grow = 1 + (HEAD_SIDES - 1) * (1 - down**2) + (HEAD_TOP - HEAD_SIDES) * up
    polygon = centre + v * grow[:, None]
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(polygon * 4).astype(np.int32)], 255, cv2.LINE_AA, 2)
    return mask


def _feather(mask: np.ndarray, fh: float) -> np.ndarray:
    k = max(1, int(FEATHER * fh)) * 2 + 1
    return cv2.GaussianBlur(mask, (k, k), 0)


def _with_alpha(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return np.dstack([image, alpha]).astype(np.uint8)


def _fill_backdrop(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The image with ``hole`` (uint8 mask) filled from around it (inpainted at low size)."""
    h, w = image.shape[:2]
    f = max(1, int(np.ceil(max(h, w) / 320)))
    small = cv2.resize(image, (w // f, h // f), interpolation=cv2.INTER_AREA)
    small_hole = cv2.resize(hole, (w // f, h // f), interpolation=cv2.INTER_NEAREST)
    filled = cv2.inpaint(small, (small_hole > 0).astype(np.uint8), 7, cv2.INPAINT_TELEA)
    filled = cv2.GaussianBlur(filled, (5, 5), 0)
    big = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR)
    a = (hole.astype(np.float32) / 255)[..., None]
    return (image * (1 - a) + big * a + 0.5).astype(np.uint8)


def presenter_from_photo(
    image_bgr: np.ndarray, landmarks: np.ndarray, name: str = "Presenter"
) -> PresenterRig:
    """A rig cut from a photo along its landmarks (468×3, image pixels)."""
    image = np.ascontiguousarray(image_bgr[..., :3])
    lm = np.asarray(landmarks, np.float32)
    if lm.shape[0] < 468 or not np.isfinite(lm).all():
        raise PresenterError("the presenter photo's landmarks are incomplete")
    h, w = image.shape[:2]
    centre, fw, fh = _oval_geometry(lm)
    chin_y = float(lm[fr.FACE_OVAL, 1].max())
    collar = chin_y + COLLAR_BELOW_CHIN * fh
    ys = np.arange(h, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    ramp = max(FEATHER * fh, 1.0)
    torso_a = np.clip((ys - collar) / ramp + 0.5, 0, 1) * np.ones_like(xs)
    neck_top = chin_y - 0.45 * fh
    neck_a = (np.clip((NECK_HALF_WIDTH * fw - np.abs(xs - centre[0])) / ramp + 0.5, 0, 1)
              * np.clip((ys - neck_top) / ramp, 0, 1) * (ys < collar + 0.2 * fh))  # fmt: skip
    head = _feather(_head_mask(lm, (h, w)), fh)
    person = np.maximum(head, (neck_a * 255).astype(np.uint8))
    hole = cv2.dilate(person, np.ones((9, 9), np.uint8))
    hole[torso_a >= 1] = 0
    transparent = np.zeros((h, w, 4), np.uint8)
    neck_image = image.copy()
    below_chin = int(min(h - 1, chin_y + 0.08 * fh))
    # Hidden under the jaw: no face there, the neck's colour (smoothed along the row).
    neck_image[:below_chin] = cv2.GaussianBlur(
        neck_image[below_chin : below_chin + 1], (0, 0), sigmaX=max(2.0, 0.04 * fw)
    )
    return PresenterRig(
        slug="photo",
        display_name=name,
        background=_fill_backdrop(image, hole),
        hair_back=transparent,
        torso=_with_alpha(image, torso_a * 255),
        neck=_with_alpha(neck_image, neck_a * 255),
        head=_with_alpha(image, head),
        hair_front=transparent,
        mouth=None,
        face=lm[:468].copy(),
        neck_pivot=np.array([lm[152, 0], chin_y - 0.22 * fh]),
    )


__all__ = [
    "DEFAULT_PRESENTER",
    "SHIPPED",
    "PresenterError",
    "PresenterRig",
    "asset_name",
    "flat_presenter",
    "load_presenter",
    "presenter_from_photo",
    "slug_of",
]
