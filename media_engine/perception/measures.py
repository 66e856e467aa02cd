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
  width (corner to corner): about 0.25-0.35 open, under 0.1 closed.
- ``mouth_open``: the gap between the inner lips over the mouth's width: near 0 closed,
  past 0.5 wide open.
- ``mouth_width``: corner to corner over the face's width (cheek to cheek), about 0.35-0.45
  at rest, more in a smile.
- ``brow_raise``: mean brow-to-upper-lid distance over the face's height (forehead to chin).
"""

import math

import numpy as np

from media_engine.perception import topology as t
from media_engine.perception.types import Measures

_RIGID = np.array(t.RIGID)


def _dist(points: np.ndarray, a: int, b: int) -> float:
    return float(np.linalg.norm(points[a] - points[b]))


def eye_openness(points: np.ndarray, lids: tuple[tuple[int, int], ...],
                 corners: tuple[int, int]) -> float:  # fmt: skip
    width = _dist(points, *corners)
    if width <= 1e-6:
        return 0.0
    return float(np.mean([_dist(points, a, b) for a, b in lids]) / width)


def head_rotation(points: np.ndarray) -> np.ndarray:
    """The rotation (3x3) taking the canonical face's frame to the landmarks' frame."""
    canonical = t.canonical_points()[_RIGID].astype(np.float64)
    observed = points[_RIGID].astype(np.float64)
    a = canonical - canonical.mean(0)
    b = observed - observed.mean(0)
    u, _, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    return (u @ np.diag([1.0, 1.0, d]) @ vt).T


def head_angles(rotation: np.ndarray) -> tuple[float, float, float]:
    """Yaw, pitch, roll in degrees (conventions in the module docstring)."""
    forward = rotation @ np.array([0.0, 0.0, -1.0])  # where the face looks (at the camera)
    across = rotation @ np.array([1.0, 0.0, 0.0])  # from the right eye to the left eye
    yaw = math.degrees(math.atan2(forward[0], -forward[2]))
    pitch = math.degrees(math.atan2(-forward[1], math.hypot(forward[0], forward[2])))
    roll = math.degrees(math.atan2(across[1], across[0]))
    return yaw, pitch, roll


def measure(landmarks: np.ndarray) -> Measures:
    """All measures of one face from its (468, 3) landmarks in frame pixels."""
    points = np.asarray(landmarks, np.float64)
    yaw, pitch, roll = head_angles(head_rotation(points))
    mouth_w = _dist(points, *t.MOUTH_CORNERS)
    face_w = _dist(points, t.RIGHT_CHEEK, t.LEFT_CHEEK)
    face_h = _dist(points, t.FOREHEAD, t.CHIN)
    gap = float(np.mean([_dist(points, a, b) for a, b in t.INNER_LIP_GAP]))
    brow = np.mean([
        _dist(points, 105, 159), _dist(points, 66, 158),  # visitor's right brow over lid
        _dist(points, 334, 386), _dist(points, 296, 385),  # left
    ])  # fmt: skip
    return Measures(
        yaw=yaw,
        pitch=pitch,
        roll=roll,
        left_eye_open=eye_openness(points, t.LEFT_EYE_LIDS, t.LEFT_EYE_CORNERS),
        right_eye_open=eye_openness(points, t.RIGHT_EYE_LIDS, t.RIGHT_EYE_CORNERS),
        mouth_open=gap / mouth_w if mouth_w > 1e-6 else 0.0,
        mouth_width=mouth_w / face_w if face_w > 1e-6 else 0.0,
        brow_raise=float(brow / face_h) if face_h > 1e-6 else 0.0,
    )
