"""The expression-fidelity sequence: a real face that turns, blinks and opens its mouth.

Made from scikit-image's ``astronaut`` by moving its landmarks (head turn as a rotation of
the 3D landmarks about the vertical axis, blinks by bringing the upper lids onto the lower,
the mouth by lowering the lower lip and jaw) and warping the image with the engines' own
mesh warp. Used by the engine tests and ``bench/pipeline.py``.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from media_engine.engines import face_regions as fr
from media_engine.engines.warp import compute_grid, region_around, remap_region

FRAMES = 44
# Upper-lid contour points and the lower-lid points they close onto.
_LIDS = [
    (246, 7), (161, 163), (160, 144), (159, 145), (158, 153), (157, 154), (173, 155),
    (466, 249), (388, 390), (387, 373), (386, 374), (385, 380), (384, 381), (398, 382),
]  # fmt: skip
_LOWER_LIP = [14, 87, 178, 88, 95, 317, 402, 318, 324, 17, 84, 181, 91, 146, 314, 405, 321, 375]
_JAW = [152, 148, 176, 149, 150, 377, 400, 378, 379, 175, 199, 200, 18, 201, 421, 428, 208]
_MOUTH_CORNERS = [61, 291, 78, 308]


@dataclass(frozen=True)
class Expression:
    yaw: float  # degrees
    blink: float  # 0 open .. 1 closed
    mouth: float  # 0 closed .. 1 wide open


NEUTRAL_FRAMES = 8


def schedule(frames: int = FRAMES) -> list[Expression]:
    """Neutral first (the engines calibrate on it), then turns, blinks and mouth openings at
    different rhythms (so that they do not correlate with each other)."""
    out = [Expression(0.0, 0.0, 0.0)] * NEUTRAL_FRAMES
    for t in range(frames - NEUTRAL_FRAMES):
        yaw = 14.0 * np.sin(2 * np.pi * t / 24)
        blink = float(max(0.0, np.sin(2 * np.pi * t / 9)) ** 2)
        mouth = float(max(0.0, np.sin(2 * np.pi * t / 14 + 2.0)))
        out.append(Expression(float(yaw), blink, mouth))
    return out


def _shepard(points: np.ndarray, index: list[int], moves: np.ndarray, sigma: float):
    """Displacements: the control points ``index`` move by ``moves`` exactly, the other
    points by a Gaussian-weighted mean of the controls' moves (fading with distance)."""
    controls = points[index]
    d2 = ((points[:, None, :] - controls[None, :, :]) ** 2).sum(-1)
    w = np.exp(-d2 / (2 * sigma**2))
    background = 0.05
    out = (w[..., None] * moves[None]).sum(1) / (w.sum(1, keepdims=True) + background)
    out[index] = moves
    return out


def expression_landmarks(neutral: np.ndarray, e: Expression) -> np.ndarray:
    """The neutral landmarks (468×3, pixels) moved to expression ``e``."""
    p = neutral.astype(np.float64).copy()
    xy = p[:, :2]
    eye_w = np.linalg.norm(xy[33] - xy[133])
    mouth_w = np.linalg.norm(xy[61] - xy[291])
    # Blink: upper lids onto the lower lids; lower lids, corners and brows stay.
    upper = [u for u, _ in _LIDS]
    lower = [v for _, v in _LIDS]
    fixed = [*lower, 33, 133, 362, 263, *fr.RIGHT_BROW.tolist(), *fr.LEFT_BROW.tolist()]
    moves = np.vstack([(xy[lower] - xy[upper]) * 0.95 * e.blink, np.zeros((len(fixed), 2))])
    blink = _shepard(xy, upper + fixed, moves, 0.18 * eye_w)
    # Mouth: lower lip and jaw down, corners half, upper lip and nose stay.
    down = np.array([0.0, 0.55 * mouth_w * e.mouth])
    still = [0, 13, 37, 267, 82, 312, 1, 2, 98, 327]
    moves = np.vstack(
        [
            np.tile(down, (len(_LOWER_LIP), 1)),
            np.tile(down * 0.85, (len(_JAW), 1)),
            np.tile(down * 0.3, (len(_MOUTH_CORNERS), 1)),
            np.zeros((len(still), 2)),
        ]
    )
    mouth = _shepard(xy, _LOWER_LIP + _JAW + _MOUTH_CORNERS + still, moves, 0.3 * mouth_w)
    blink[_LOWER_LIP + _JAW] = 0.0
    p[:, :2] += blink + mouth
    # Head turn: rotate about the vertical axis through the face's centre.
    a = np.radians(e.yaw)
    centre = p.mean(axis=0)
    x, z = p[:, 0] - centre[0], p[:, 2] - centre[2]
    p[:, 0] = centre[0] + x * np.cos(a) + z * np.sin(a)
    p[:, 2] = centre[2] - x * np.sin(a) + z * np.cos(a)
    return p.astype(np.float32)


def render_expression(image: np.ndarray, neutral: np.ndarray, e: Expression) -> np.ndarray:
    """``image`` (whose face has landmarks ``neutral``) warped to expression ``e``."""
    target = expression_landmarks(neutral, e)
    h, w = image.shape[:2]
    out = image.copy()
    region = region_around(target[fr.FACE_OVAL, :2], w, h, margin=0.25)
    grid = compute_grid(
        neutral[:, :2], target[:, :2], fr.render_triangles(), region, 2, fallback=np.eye(2, 3)
    )
    warped, _ = remap_region(image, grid)
    out[region.slices] = warped
    return out


def sequence(image: np.ndarray, neutral: np.ndarray, frames: int = FRAMES):
    """(frames, expressions): the image warped through ``schedule(frames)``."""
    exprs = schedule(frames)
    return [render_expression(image, neutral, e) for e in exprs], exprs


@dataclass
class Fidelity:
    eye: float
    mouth: float
    yaw: float
    frames_with_face: int


def pearson(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.std() < 1e-9 or b.std() < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def measure_fidelity(
    frames: list[np.ndarray],
    perceive_input: Callable[[np.ndarray], object | None],
    render: Callable[[np.ndarray, object | None], np.ndarray],
    perceive_output: Callable[[np.ndarray], object | None],
) -> Fidelity:
    """Correlations between the input's and the engine output's measures over the frames."""
    rows = []
    for frame in frames:
        face_in = perceive_input(frame)
        out = render(frame.copy(), face_in)
        face_out = perceive_output(out)
        if face_in is None or face_out is None:
            continue
        mi, mo = face_in.measures, face_out.measures
        rows.append(
            (
                (mi.left_eye_open + mi.right_eye_open) / 2,
                (mo.left_eye_open + mo.right_eye_open) / 2,
                mi.mouth_open,
                mo.mouth_open,
                mi.yaw,
                mo.yaw,
            )
        )
    if len(rows) < 3:
        return Fidelity(0.0, 0.0, 0.0, len(rows))
    r = np.array(rows)
    return Fidelity(
        eye=pearson(r[:, 0], r[:, 1]),
        mouth=pearson(r[:, 2], r[:, 3]),
        yaw=pearson(r[:, 4], r[:, 5]),
        frames_with_face=len(rows),
    )
