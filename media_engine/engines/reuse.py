"""Reusing the last drawn frame while the rig's geometry stands still.

A visitor who holds still (and the presenter at rest, when nobody is there) gives the rig the
same pose frame after frame, up to the tracker's last hundredths of a pixel. Everything the
avatar draws follows from its head points (the rest shape with the expression applied, and
the posed points), so when every point lies within ``REUSE_PX`` of where it was when the
last frame was drawn, that frame is shown again instead of being drawn anew (a copy: the
pipeline draws the label into the frame it gets). The comparison is always against the frame
that was drawn, never the previous reuse, so slow motion is drawn as soon as it adds up to
``REUSE_PX`` and the picture never drifts from the pose by more than that.

The cache is one frame, per engine (per session). It is dropped on a new track (another
visitor), a new frame size, or any change of what is drawn besides the points (``flags``).
"""

from dataclasses import dataclass

import numpy as np

# Geometry closer than this (pixels, every point) draws the same picture: a bilinear
# resampling shifted by a twentieth of a pixel.
REUSE_PX = 0.05
# A drawn frame is kept (copied) only when the geometry moved less than this since the frame
# drawn before it: the head is settling, the next frames may reuse it. A moving head costs no
# copy.
SETTLING_PX = 1.0


@dataclass(frozen=True)
class Drawn:
    key: tuple  # what besides the points decides the picture (size, drawn parts)
    points: np.ndarray  # (N, 2) the geometry the frame was drawn from
    frame: np.ndarray | None  # the drawn frame, when kept (private: copies go out)
    extra: object  # what the engine reports with the frame (the posed head)


class FrameReuse:
    """The last drawn frame and the geometry it was drawn from (one thread at a time)."""

    def __init__(self, tolerance_px: float = REUSE_PX) -> None:
        self.tolerance_px = tolerance_px
        self._drawn: Drawn | None = None
        self._moved = np.inf  # how far the geometry moved from the last drawn frame's
        self.hits = 0
        self.misses = 0

    def clear(self) -> None:
        self._drawn = None
        self._moved = np.inf

    def lookup(self, key: tuple, points: np.ndarray) -> Drawn | None:
        """The drawn frame for ``points`` under ``key``, or None (draw it, then ``store``)."""
        drawn = self._drawn
        self._moved = np.inf
        if drawn is not None and drawn.key == key and drawn.points.shape == points.shape:
            self._moved = float(np.abs(points - drawn.points).max())
            if drawn.frame is not None and self._moved <= self.tolerance_px:
                self.hits += 1
                return drawn
        self.misses += 1
        return None

    def store(self, key: tuple, points: np.ndarray, frame: np.ndarray, extra: object) -> None:
        """The frame just drawn for ``points`` (after a ``lookup`` that found none)."""
        kept = frame.copy() if self._moved <= SETTLING_PX else None
        self._drawn = Drawn(key, points.copy(), kept, extra)
