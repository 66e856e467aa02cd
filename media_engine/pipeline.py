"""One visitor's frame work: camera frame in, labelled fused frame (or "paused") out.

    av.VideoFrame ─▶ BGR ─▶ fit into the processing size ─▶ perceive (optional) ─▶
    engine.render ─▶ apply_label ─▶ provenance mark (media_engine/provenance) ─▶
    av.VideoFrame (yuv420p, the camera frame's pts)

``FramePipeline.process`` is synchronous and runs on the session's worker thread, never on the
event loop (OpenCV, PyAV's swscale and ONNX Runtime release the GIL). The seams that the
perception and engine work plug into are plain attributes, read once per frame:

- ``perceive``: ``Callable[[np.ndarray], Face | None]`` or ``None`` (no perception: engines get
  ``face=None``);
- ``engine``: a ``FusionEngine`` (``media_engine/engines``);
- ``processing_size``: ``(width, height)`` the frame is scaled down to fit into before
  perception and rendering, or ``None`` for the camera's own size. The fused frame goes back at
  that size (adaptive resolution moves it along a ladder);
- ``adaptive``: an ``AdaptiveResolution`` (``media_engine/adaptive.py``) or ``None``: after each
  fused frame it is told the frame's time (and ``bitrate_bps``, the receiver's bandwidth
  estimate, when the session has one) and sets ``processing_size`` to its rung.

When fusion is not allowed the camera frame is not looked at: the "service paused" picture
goes back in its place (no perception, no engine, no label). Every frame keeps the camera
frame's time (``wire_pts``, see ``media_engine/rtptime.py``). Each stage's time is kept
(median and p95 over the last frames) for the session stats, and the last frame's in
``last_times`` (for ``bench/pipeline.py``: the same stages the worker runs, timed the same way).
"""

import time
from collections import deque
from collections.abc import Callable

import av
import cv2
import numpy as np

from media_engine.adaptive import AdaptiveResolution
from media_engine.engines.base import FusionEngine
from media_engine.label import apply_label
from media_engine.paused import paused_frame
from media_engine.perception.types import Face
from media_engine.provenance import session_mark
from media_engine.rtptime import WIRE_TIME_BASE, wire_pts

Perceive = Callable[[np.ndarray], Face | None]

STAGES = ("to_bgr", "scale", "perceive", "render", "label", "to_frame", "total")
WINDOW = 120  # frames kept for the stage medians (4 s at 30 fps)


class StageTimes:
    """The last ``WINDOW`` durations of each stage, in milliseconds."""

    def __init__(self, window: int = WINDOW) -> None:
        self._times: dict[str, deque[float]] = {s: deque(maxlen=window) for s in STAGES}

    def add(self, stage: str, ms: float) -> None:
        self._times[stage].append(ms)

    def summary(self) -> dict[str, dict[str, float]]:
        """``{stage: {"p50": ms, "p95": ms}}`` for every stage that ran."""
        out = {}
        for stage, times in self._times.items():
            if times:
                values = np.fromiter(times, float)
                out[stage] = {
                    "p50": round(float(np.percentile(values, 50)), 2),
                    "p95": round(float(np.percentile(values, 95)), 2),
                }
        return out


def fit_size(width: int, height: int, limit: tuple[int, int] | None) -> tuple[int, int]:
    """The size a ``width``×``height`` frame is scaled down to so that it fits ``limit``."""
    if limit is None:
        return width, height
    scale = min(1.0, limit[0] / width, limit[1] / height)
    if scale >= 1.0:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def scale_frame(bgr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``bgr`` scaled down to ``size`` (width, height): bilinear down to half size (4× faster
    than area averaging at 640×480 → 480×360, and sharp enough), area averaging below."""
    width, height = size
    shrink = min(width / bgr.shape[1], height / bgr.shape[0])
    interpolation = cv2.INTER_LINEAR if shrink >= 0.5 else cv2.INTER_AREA
    return cv2.resize(bgr, (width, height), interpolation=interpolation)


def to_video_frame(bgr: np.ndarray) -> av.VideoFrame:
    """A yuv420p ``VideoFrame`` (what the encoder takes) from a BGR frame.

    OpenCV's converter is about 3× faster than swscale's BGR path here (0.6 vs 1.7 ms at
    640×480) but needs even sides; odd sizes go through PyAV. Its planes are copied
    straight into the new frame's planes (``VideoFrame.from_ndarray`` costs about 7× more
    for the same bytes)."""
    height, width = bgr.shape[:2]
    if width % 2 == 0 and height % 2 == 0:
        return i420_frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420), width, height)
    return av.VideoFrame.from_ndarray(bgr, format="bgr24").reformat(format="yuv420p")


def i420_frame(i420: np.ndarray, width: int, height: int) -> av.VideoFrame:
    """A yuv420p ``VideoFrame`` holding OpenCV's I420 layout (the Y rows, then the U and
    the V plane, each ``width / 2`` × ``height / 2``; even sides)."""
    frame = av.VideoFrame(width, height, "yuv420p")
    flat = i420.reshape(-1)
    luma, chroma = width * height, (width // 2) * (height // 2)
    parts = (flat[:luma], flat[luma : luma + chroma], flat[luma + chroma :])
    for plane, data in zip(frame.planes, parts, strict=True):
        rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        rows[:, : plane.width] = data.reshape(plane.height, plane.width)
    return frame


class FramePipeline:
    def __init__(
        self,
        engine: FusionEngine,
        *,
        perceive: Perceive | None = None,
        processing_size: tuple[int, int] | None = None,
        adaptive: AdaptiveResolution | None = None,
        frame_budget_ms: float = 1000.0 / 30,
        session_id: str | None = None,
    ) -> None:
        self.engine = engine
        # The invisible provenance mark (docs/provenance.md), added after the label.
        self.provenance = session_mark(session_id)
        self.perceive = perceive
        self.processing_size = processing_size
        # Which ONNX Runtime provider perception/engines run on ("CPUExecutionProvider", ...),
        # for the session stats; set by whoever builds the pipeline.
        self.provider: str | None = None
        self.adaptive = adaptive
        self.frame_budget_ms = frame_budget_ms
        self.bitrate_bps: float | None = None
        self.times = StageTimes()
        self.frames = 0
        self.paused_frames = 0
        self.last_size: tuple[int, int] | None = None
        self.last_face: Face | None = None
        self.last_times: dict[str, float] = {}

    def process(self, frame: av.VideoFrame, *, fusion_allowed: bool) -> av.VideoFrame:
        """The frame to send for one camera frame (the camera frame's time)."""
        start = time.perf_counter()
        self.last_times = {}
        width, height = fit_size(frame.width, frame.height, self.processing_size)
        if not fusion_allowed:
            out = av.VideoFrame.from_ndarray(paused_frame(width, height), format="bgr24")
            self.paused_frames += 1
            self.last_face = None
            return self._finish(out.reformat(format="yuv420p"), frame, start)

        mark = start
        bgr = frame.to_ndarray(format="bgr24")
        mark = self._lap("to_bgr", mark)
        if (width, height) != (frame.width, frame.height):
            bgr = scale_frame(bgr, (width, height))
            mark = self._lap("scale", mark)

        perceive = self.perceive
        face = None
        if perceive is not None:
            face = perceive(bgr)
            mark = self._lap("perceive", mark)
        self.last_face = face

        fused = self.engine.render(bgr, face)
        if fused.shape != bgr.shape or fused.dtype != np.uint8:
            raise ValueError(
                f"engine {self.engine.name!r} returned {fused.shape} {fused.dtype}, "
                f"expected {bgr.shape} uint8"
            )
        mark = self._lap("render", mark)
        if not fused.flags.writeable or not fused.flags.c_contiguous:
            fused = np.ascontiguousarray(fused).copy()
        apply_label(fused)
        self.provenance.apply(fused)
        mark = self._lap("label", mark)

        out = to_video_frame(fused)
        self._lap("to_frame", mark)
        out = self._finish(out, frame, start)
        if self.adaptive is not None:
            ms = (time.perf_counter() - start) * 1000.0
            rung = self.adaptive.observe(ms, self.frame_budget_ms, self.bitrate_bps)
            self.processing_size = (rung.width, rung.height)
        return out

    def _finish(self, out: av.VideoFrame, source: av.VideoFrame, start: float) -> av.VideoFrame:
        if source.pts is not None and source.time_base is not None:
            out.pts = wire_pts(source.pts, source.time_base)
            out.time_base = WIRE_TIME_BASE
        self.frames += 1
        self.last_size = (out.width, out.height)
        total_ms = (time.perf_counter() - start) * 1000.0
        self.times.add("total", total_ms)
        self.last_times["total"] = total_ms
        return out

    def _lap(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        ms = (now - since) * 1000.0
        self.times.add(stage, ms)
        self.last_times[stage] = ms
        return now
