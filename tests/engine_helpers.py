"""Faces for engine tests without running perception: landmarks placed in a frame."""

import numpy as np

from media_engine.engines.portraits import default_avatar
from media_engine.perception.types import Face, Measures


def face_from_landmarks(landmarks: np.ndarray) -> Face:
    lm = np.asarray(landmarks, np.float32)
    lo, hi = lm[:, :2].min(axis=0), lm[:, :2].max(axis=0)
    measures = Measures(0.0, 0.0, 0.0, 0.3, 0.3, 0.0, 0.4, 0.1)
    return Face(
        landmarks=lm, box=(*map(float, lo), *map(float, hi - lo)), score=1.0, measured=measures
    )


def placed_landmarks(width: int, height: int, face_height: float, centre=None) -> np.ndarray:
    """The default avatar's landmarks scaled to ``face_height`` pixels at ``centre``."""
    lm = default_avatar().landmarks.astype(np.float64).copy()
    xy = lm[:, :2]
    size = np.ptp(xy[:, 1])
    mid = (xy.min(axis=0) + xy.max(axis=0)) / 2
    c = np.array(centre if centre is not None else (width / 2, height / 2), np.float64)
    lm[:, :2] = (xy - mid) * (face_height / size) + c
    lm[:, 2] *= face_height / size
    return lm.astype(np.float32)


def turned_landmarks(landmarks: np.ndarray, yaw=0.0, pitch=0.0, roll=0.0) -> np.ndarray:
    """Landmarks rotated in 3-D about their centroid (perception's angle conventions)."""
    from media_engine.engines.rig import rotation

    p = landmarks.astype(np.float64)
    c = p.mean(axis=0)
    return ((p - c) @ rotation(yaw, pitch, roll).T + c).astype(np.float32)


def tracked(landmarks: np.ndarray, track: int = 1) -> Face:
    """A face of track ``track`` at ``landmarks``."""
    face = face_from_landmarks(landmarks)
    return Face(face.landmarks, face.box, face.score, face.measures, track_id=track)


def open_mouth(landmarks: np.ndarray, amount: float) -> np.ndarray:
    """Landmarks with the lower lip and jaw lowered by ``amount`` × the mouth width."""
    from tests.fidelity import Expression, expression_landmarks

    return expression_landmarks(landmarks, Expression(0.0, 0.0, amount))
