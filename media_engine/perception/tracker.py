"""Follows one face from frame to frame, as MediaPipe's face mesh graph does.

With no track, the detector looks for faces and the largest, most central one is taken. From
then on the detector rests: each frame, the landmark model runs on the region that the
previous frame's landmarks give, and its face-presence score says whether the face is still
there. When the score drops, or the region leaves the frame, the track is lost and the
detector runs again on the same frame, so a cut costs no frame.
"""

import math
import time
from dataclasses import dataclass

import numpy as np

from media_engine.perception.detector import Detection, FaceDetector
from media_engine.perception.landmarks import (
    FaceMesh,
    MeshResult,
    Region,
    region_from_box,
    region_from_landmarks,
)

MIN_PRESENCE = 0.5
MIN_REGION_PX = 12.0


@dataclass(frozen=True)
class TrackStep:
    """What one frame of tracking produced and what it cost."""

    mesh: MeshResult | None
    detected: bool  # the detector ran on this frame
    new_track: bool  # the face was (re)acquired on this frame
    track_id: int  # counts the tracks: a new one on every (re)acquisition
    detect_ms: float
    landmarks_ms: float


def pick_face(detections: list[Detection], width: int, height: int) -> Detection | None:
    """The largest, most central face: area weighted down by distance from the centre."""
    if not detections:
        return None
    half_diagonal = math.hypot(width, height) / 2

    def weight(d: Detection) -> float:
        x, y, w, h = d.box
        off = math.hypot(x + w / 2 - width / 2, y + h / 2 - height / 2) / half_diagonal
        return w * h * max(0.0, 1.0 - 0.75 * min(off, 1.0))

    return max(detections, key=weight)


def region_is_usable(region: Region, width: int, height: int) -> bool:
    return (
        MIN_REGION_PX <= region.size <= 4 * max(width, height)
        and 0 <= region.cx < width
        and 0 <= region.cy < height
    )


class FaceTracker:
    """Per-session tracking state around the process-wide detector and mesh models."""

    def __init__(self, detector: FaceDetector, mesh: FaceMesh, min_presence: float = MIN_PRESENCE):
        self.detector = detector
        self.mesh = mesh
        self.min_presence = min_presence
        self.region: Region | None = None
        self.frame_size: tuple[int, int] | None = None
        self.detector_calls = 0
        self.losses = 0
        self.track_id = 0

    def reset(self) -> None:
        self.region = None

    def _follow_resize(self, width: int, height: int) -> None:
        """The processing size changed (adaptive resolution): the same picture, scaled, so the
        region scales with it instead of being lost."""
        if self.frame_size is not None and self.region is not None:
            old_w, old_h = self.frame_size
            if (old_w, old_h) != (width, height):
                sx, sy = width / old_w, height / old_h
                r = self.region
                self.region = Region(
                    cx=r.cx * sx, cy=r.cy * sy, size=r.size * math.sqrt(sx * sy), angle=r.angle
                )
        self.frame_size = (width, height)

    def _detect(self, bgr: np.ndarray) -> Region | None:
        self.detector_calls += 1
        h, w = bgr.shape[:2]
        face = pick_face(self.detector.detect(bgr), w, h)
        if face is None:
            return None
        return region_from_box(face.box, face.right_eye, face.left_eye)

    def _landmarks(self, bgr: np.ndarray, region: Region) -> MeshResult | None:
        result = self.mesh.run(bgr, region)
        return result if result.presence >= self.min_presence else None

    def step(self, bgr: np.ndarray) -> TrackStep:
        h, w = bgr.shape[:2]
        self._follow_resize(w, h)
        detect_ms = landmarks_ms = 0.0
        detected = new_track = False
        result = None
        if self.region is not None:
            start = time.perf_counter()
            result = self._landmarks(bgr, self.region)
            landmarks_ms += (time.perf_counter() - start) * 1000
            if result is None:
                self.losses += 1
                self.region = None
        if result is None:
            start = time.perf_counter()
            region = self._detect(bgr)
            detect_ms = (time.perf_counter() - start) * 1000
            detected = True
            if region is not None:
                start = time.perf_counter()
                result = self._landmarks(bgr, region)
                if result is not None:
                    # The detector's box is a rough region; one more pass from the mesh's own
                    # region puts the points where tracking would (a new track starts
                    # right, and the smoothing filter does not have to walk there slowly).
                    refined = self._landmarks(bgr, region_from_landmarks(result.landmarks))
                    result = refined or result
                landmarks_ms += (time.perf_counter() - start) * 1000
                new_track = result is not None
        if new_track:
            self.track_id += 1
        if result is not None:
            region = region_from_landmarks(result.landmarks)
            self.region = region if region_is_usable(region, w, h) else None
        return TrackStep(result, detected, new_track, self.track_id, detect_ms, landmarks_ms)
