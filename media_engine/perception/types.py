"""What perception hands the engines: one tracked face per frame."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Measures:
    """Plain numbers read off the landmarks; engines and the session stats use them.

    Angles in degrees (yaw: positive when the visitor turns to their left, i.e. towards
    the image's right; pitch: positive looking up; roll: positive tilting clockwise in the
    image). Openness values are ratios normalised by face size: 0 for closed, about 0.25-0.35
    for an open eye, mouth opening grows past 0.5 for a wide-open mouth. ``brow_raise`` is the
    brow-to-eye distance over face height.
    """

    yaw: float
    pitch: float
    roll: float
    left_eye_open: float
    right_eye_open: float
    mouth_open: float
    mouth_width: float
    brow_raise: float


@dataclass(frozen=True)
class Face:
    """One face in one frame, in that frame's pixel coordinates.

    ``landmarks`` is MediaPipe's 468-point face mesh, float32 (468, 3): x, y in pixels,
    z in the same scale (relative depth). "Left eye" is the visitor's left eye, which
    appears on the image's right.
    """

    landmarks: np.ndarray
    box: tuple[float, float, float, float]  # x, y, width, height in pixels
    score: float
    measures: Measures
    # Which track the face belongs to: a new number each time the tracker (re)acquires a
    # face (a new person, or the same one after a loss). Engines keep per-person state by it.
    track_id: int | None = None
