"""What perception hands the engines: one tracked face per frame."""

import functools
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Measures:
    """Plain numbers read off the landmarks (``Face.measures``): the fidelity bench and the
    perception tests read them; no engine does.

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
    appears on the image's right. ``measures`` are read off the landmarks on first use
    (no engine reads them, so the media worker's frames do not pay for them), unless given
    as ``measured``. The landmarks must not change after the face is made.
    """

    landmarks: np.ndarray
    box: tuple[float, float, float, float]  # x, y, width, height in pixels
    score: float
    measured: Measures | None = field(default=None, repr=False)
    # Which track the face belongs to: a new number each time the tracker (re)acquires a
    # face (a new person, or the same one after a loss). Engines keep per-person state by it.
    track_id: int | None = None

    @functools.cached_property
    def measures(self) -> Measures:
        """The face's measures: ``measured`` when given, else computed once, on first read."""
        if self.measured is not None:
            return self.measured
        from media_engine.perception.measures import measure  # measures imports this module

        return measure(self.landmarks)
