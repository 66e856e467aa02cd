"""One session's perception: frame in, tracked and smoothed face out.

``Perceiver`` holds a session's state (its track, its filter); the models behind it are the
process-wide ONNX Runtime sessions that every stream shares. It never stores or logs frames
or landmarks beyond the current track.
"""

import time
from dataclasses import dataclass

import numpy as np

from media_engine import runtime
from media_engine.frames import FrameError, as_bgr
from media_engine.perception.detector import FaceDetector
from media_engine.perception.filters import OneEuroFilter
from media_engine.perception.landmarks import FaceMesh
from media_engine.perception.tracker import FaceTracker
from media_engine.perception.types import Face

__all__ = ["FrameError", "Perceiver", "PerceptionTimings", "as_bgr"]


@dataclass(frozen=True)
class PerceptionTimings:
    """Milliseconds each stage took on the last frame (0 for a stage that did not run)."""

    convert_ms: float
    detect_ms: float
    landmarks_ms: float
    smooth_ms: float
    total_ms: float
    detected: bool  # the detector ran on this frame


NO_TIMINGS = PerceptionTimings(0.0, 0.0, 0.0, 0.0, 0.0, False)


class Perceiver:
    """Finds, tracks and measures the visitor's face, one frame at a time (one per session,
    called from one thread at a time)."""

    def __init__(
        self,
        *,
        smoothing: bool = True,
        detector: FaceDetector | None = None,
        mesh: FaceMesh | None = None,
    ):
        self.tracker = FaceTracker(detector or FaceDetector(), mesh or FaceMesh())
        self.smoothing = smoothing
        self.filter = OneEuroFilter()
        self.timings = NO_TIMINGS
        self.frames = 0
        self.faces = 0

    @property
    def detector_calls(self) -> int:
        return self.tracker.detector_calls

    def reset(self) -> None:
        """Forget the track (e.g. when the visitor leaves and a new session begins)."""
        self.tracker.reset()
        self.filter.reset()

    def process(self, bgr: np.ndarray, timestamp: float | None = None) -> Face | None:
        """The tracked face in this frame (frame pixels), or None when there is none.

        ``timestamp`` (seconds, increasing) drives the smoothing filter; the monotonic clock
        when not given.
        """
        start = time.perf_counter()
        if timestamp is None:
            timestamp = time.monotonic()
        frame = as_bgr(bgr)
        converted = time.perf_counter()
        if self.tracker.frame_size not in (None, (frame.shape[1], frame.shape[0])):
            self.filter.reset()  # a new processing size: points jump by the scale
        step = self.tracker.step(frame)
        self.frames += 1
        smooth_ms = 0.0
        face = None
        if step.mesh is not None:
            self.faces += 1
            t0 = time.perf_counter()
            points = step.mesh.landmarks
            x0, y0 = points[:, 0].min(), points[:, 1].min()
            x1, y1 = points[:, 0].max(), points[:, 1].max()
            if self.smoothing:
                if step.new_track:
                    self.filter.reset()
                size = float(max(x1 - x0, y1 - y0, 1.0))
                points = self.filter(points, timestamp, scale=size).astype(np.float32)
                x0, y0 = points[:, 0].min(), points[:, 1].min()
                x1, y1 = points[:, 0].max(), points[:, 1].max()
            t1 = time.perf_counter()
            face = Face(
                landmarks=points,
                box=(float(x0), float(y0), float(x1 - x0), float(y1 - y0)),
                score=step.mesh.presence,
                track_id=step.track_id,
            )
            smooth_ms = (t1 - t0) * 1000
        else:
            self.filter.reset()
        self.timings = PerceptionTimings(
            convert_ms=(converted - start) * 1000,
            detect_ms=step.detect_ms,
            landmarks_ms=step.landmarks_ms,
            smooth_ms=smooth_ms,
            total_ms=(time.perf_counter() - start) * 1000,
            detected=step.detected,
        )
        return face

    def stats(self) -> dict[str, object]:
        """For the session stats: counters, the last frame's stage times, the provider."""
        t = self.timings
        return {
            "provider": runtime.provider_in_use(),
            "frames": self.frames,
            "faces": self.faces,
            "detector_calls": self.tracker.detector_calls,
            "track_losses": self.tracker.losses,
            "perception_ms": round(t.total_ms, 3),
            "detect_ms": round(t.detect_ms, 3),
            "landmarks_ms": round(t.landmarks_ms, 3),
        }
