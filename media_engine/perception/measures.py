"""Plain numbers read off the 468 landmarks: head pose, eyes, mouth, brows.

All distances are taken in 3D (x, y in pixels, z in the same scale), so a turned head does not
read as a narrowed eye. Conventions (see ``media_engine.perception.types.Measures``):

- ``yaw``, ``pitch``, ``roll`` in degrees, from the rotation that best fits the canonical
  face's rigid points onto the landmarks (Kabsch / orthogonal Procrustes, no camera model
  needed since the landmarks carry depth). Yaw is positive when the visitor turns to their
  left (nose towards the image's right), pitch positive looking up, roll positive tilting
  clockwise in the image. The canonical face is a neutral frontal face, so these are 0 for a
  face looking straight into the camera.
- ``left_eye_open`` / ``right_eye_open``: the eye aspect ratio, mean lid gap over the eye's
  width (corner to corner): about 0.30-0.35 open. This mesh model moves the lids little:
  closed eyes read about 0.22-0.26, and closing one eye lowers both (docs/perception.md).
- ``mouth_open``: the gap between the inner lips over the mouth's width: near 0 closed,
  0.17 for the astronaut's parted smile, 0.3 and more open.
- ``mouth_width``: corner to corner over the face's width (cheek to cheek), about 0.45-0.5
  for the astronaut's smile.
- ``brow_raise``: mean brow-to-upper-lid distance over the face's height (forehead to chin).
"""

import functools
import math

import numpy as np

from media_engine.perception import topology as t
from media_engine.perception.types import Measures

_RIGID = np.array(t.RIGID)

# Every distance the measures need, as (from, to) pairs, measured in one numpy call.
_PAIRS = np.array(
    [
        *t.LEFT_EYE_LIDS,  # 0-2
        t.LEFT_EYE_CORNERS,  # 3
        *t.RIGHT_EYE_LIDS,  # 4-6
        t.RIGHT_EYE_CORNERS,  # 7
        *t.INNER_LIP_GAP,  # 8-10
        t.MOUTH_CORNERS,  # 11
        (t.RIGHT_CHEEK, t.LEFT_CHEEK),  # 12
        (t.FOREHEAD, t.CHIN),  # 13
        (105, 159),  # 14-15: the visitor's right brow over its upper lid
        (66, 158),
        (334, 386),  # 16-17: left
        (296, 385),
    ]
)


@functools.cache
def _canonical_rigid() -> np.ndarray:
    points = t.canonical_points()[_RIGID].astype(np.float64)
    return points - points.mean(0)


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 1e-6 else 0.0


def head_rotation(points: np.ndarray) -> np.ndarray:
    """The rotation (3x3) taking the canonical face's frame to the landmarks' frame."""
    observed = points[_RIGID]
    h = _canonical_rigid().T @ (observed - observed.mean(0))
    u, _, vt = np.linalg.svd(h)
    if np.linalg.det(u @ vt) < 0:
        vt[2] = -vt[2]
    return (u @ vt).T


def head_angles(rotation: np.ndarray) -> tuple[float, float, float]:
    """Yaw, pitch, roll in degrees (conventions in the module docstring), for a rotation
    composed as yaw(pitch(roll(canonical))): roll about the face's own depth axis first, then
    pitch, then yaw about the vertical."""
    forward = -rotation[:, 2]  # where the face looks: the canonical -z (at the camera)
    yaw = math.degrees(math.atan2(forward[0], -forward[2]))
    pitch = math.degrees(math.atan2(-forward[1], math.hypot(forward[0], forward[2])))
    roll = math.degrees(math.atan2(rotation[1, 0], rotation[1, 1]))
    return yaw, pitch, roll


def measure(landmarks: np.ndarray) -> Measures:
    """All measures of one face from its (468, 3) landmarks in frame pixels."""
    points = np.asarray(landmarks, np.float64)
    yaw, pitch, roll = head_angles(head_rotation(points))
    # Plain floats from here: a numpy mean per ratio costs more than the arithmetic (the
    # sums run in the same order as numpy's over so few values).
    d = np.linalg.norm(points[_PAIRS[:, 0]] - points[_PAIRS[:, 1]], axis=1).tolist()
    return Measures(
        yaw=yaw,
        pitch=pitch,
        roll=roll,
        left_eye_open=_ratio(sum(d[0:3]) / 3, d[3]),
        right_eye_open=_ratio(sum(d[4:7]) / 3, d[7]),
        mouth_open=_ratio(sum(d[8:11]) / 3, d[11]),
        mouth_width=_ratio(d[11], d[12]),
        brow_raise=_ratio(sum(d[14:18]) / 4, d[13]),
    )
