"""Contact sheets of the provenance mark, for a person's eyes (``bench/provenance.py
--sheets DIR``): the shipped presenters (Mei, Daniel) through the real pipeline (avatar
engine, perception on, 640×480), driven by the camera frames of the benchmark; one frame
after the encoder's start and ramp, marked with the session's mark and unmarked.

Per presenter: ``<name>_1x.png`` (unmarked | marked, full frame), ``<name>_4x.png`` (4×
crops of the backdrop gradient, the face's skin and the clothes, unmarked | marked) and
``<name>_diff.png`` (marked − unmarked, ×20 around mid-grey). Frames are written only to
``DIR``, which must lie outside the repository (frames never go into the project).
"""

import uuid
from pathlib import Path

import cv2
import numpy as np

PRESENTERS = ("mei", "daniel")
# (x, y) of 128×96 crops in the 640×480 frame: backdrop beside the head, cheek, shoulder.
CROPS = {"backdrop": (30, 60), "backdrop right": (480, 150), "skin": (250, 200),
         "clothes": (100, 370)}  # fmt: skip
CROP_W, CROP_H, ZOOM = 128, 96, 4
DIFF_GAIN = 20
SHEET_FRAME = 90  # past the encoder's start and the ramp down (mark.START_FRAMES, RAMP_FRAMES)


def presenter_frames(presenter: str, cameras: list[np.ndarray]) -> tuple[list, list]:
    """(unmarked, marked) fused frames of one presenter, one per camera frame."""
    from bench.provenance import presenter_pipeline, recorded_run

    recorder = recorded_run(presenter_pipeline(presenter, str(uuid.uuid4())), cameras)
    return recorder.unmarked, recorder.marked


def _titled(image: np.ndarray, title: str) -> np.ndarray:
    image = image.copy()
    cv2.putText(image, title, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 255), 1)
    return image


def sheets(clean: np.ndarray, marked: np.ndarray) -> dict[str, np.ndarray]:
    """The three sheets of one frame: ``1x``, ``4x`` and ``diff``."""
    gap = np.full((clean.shape[0], 8, 3), 255, np.uint8)
    full = np.hstack([_titled(clean, "unmarked"), gap, _titled(marked, "marked")])
    rows = []
    for name, (x, y) in CROPS.items():
        pair = []
        for picture, state in ((clean, "unmarked"), (marked, "marked")):
            crop = picture[y : y + CROP_H, x : x + CROP_W]
            big = cv2.resize(crop, None, fx=ZOOM, fy=ZOOM, interpolation=cv2.INTER_NEAREST)
            pair.append(_titled(big, f"{name} {state} {ZOOM}x"))
        rows.append(np.hstack([pair[0], np.full((CROP_H * ZOOM, 8, 3), 255, np.uint8), pair[1]]))
    difference = marked.astype(np.int16) - clean
    diff = np.clip(128 + DIFF_GAIN * difference, 0, 255).astype(np.uint8)
    return {"1x": full, "4x": np.vstack(rows), "diff": _titled(diff, f"diff x{DIFF_GAIN}")}


def write_sheets(directory: Path, cameras: list[np.ndarray], root: Path) -> list[Path]:
    """Writes every presenter's sheets of the last camera frame into ``directory``."""
    directory = directory.resolve()
    if directory.is_relative_to(root.resolve()):
        raise SystemExit(f"--sheets {directory}: frames never go into the repository")
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for presenter in PRESENTERS:
        unmarked, marked = presenter_frames(presenter, cameras)
        for kind, image in sheets(unmarked[-1], marked[-1]).items():
            path = directory / f"{presenter}_{kind}.png"
            cv2.imwrite(str(path), image)
            written.append(path)
    return written
