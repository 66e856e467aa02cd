"""The session's two tracks: the camera read newest-first, the fused video sent back.

aiortc's ``RemoteStreamTrack`` queues every decoded frame without bound. A pipeline that reads
every frame in order builds seconds of delay as soon as one frame takes longer than the frame
interval (DESIGN.md: 1.3 s → 5.9 s in 20 s with a 40 ms stage). ``NewestFrameReader`` drains
the track in its own task and keeps only the newest frame; the pipeline takes whatever is
newest when it is ready for the next one, and skipped frames are counted, not queued.

``FusedVideoTrack`` is what the peer connection sends: ``recv()`` returns the newest fused
frame that has not been sent yet and waits when there is none (an older fused frame that was
never sent is replaced, not queued). Frames keep the ``pts`` the pipeline gave them: the
camera frame's RTP timestamp (``media_engine/rtptime.py``).
"""

import asyncio
import time

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

# The time step put between two frames when the camera's time jumps back.
FRAME_STEP_S = 1 / 30


class FrameCounter:
    """Frames per second over the last interval (read by the session stats)."""

    def __init__(self) -> None:
        self.total = 0
        self._mark_total = 0
        self._mark_time = time.monotonic()

    def tick(self) -> None:
        self.total += 1

    def rate(self) -> float:
        """Frames per second since the previous call."""
        now = time.monotonic()
        elapsed = now - self._mark_time
        fps = (self.total - self._mark_total) / elapsed if elapsed > 0 else 0.0
        self._mark_total, self._mark_time = self.total, now
        return round(fps, 1)


class NewestFrameReader:
    """Reads a video track as fast as it delivers and keeps only the newest frame."""

    def __init__(self, track: MediaStreamTrack) -> None:
        self._track = track
        self._newest: av.VideoFrame | None = None
        self._fresh = asyncio.Event()
        self._ended = False
        self.received = FrameCounter()
        self.skipped = 0
        self.last_frame_at: float | None = None
        self.ended = asyncio.Event()
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        try:
            while True:
                frame = await self._track.recv()
                if self._newest is not None:
                    self.skipped += 1
                self._newest = frame
                self.last_frame_at = time.monotonic()
                self.received.tick()
                self._fresh.set()
        except MediaStreamError:
            pass
        finally:
            self._ended = True
            self.ended.set()
            self._fresh.set()

    async def next(self) -> av.VideoFrame | None:
        """The newest frame not taken yet (waits for one); ``None`` once the track ended."""
        while self._newest is None:
            if self._ended:
                return None
            self._fresh.clear()
            await self._fresh.wait()
        frame, self._newest = self._newest, None
        return frame

    async def stop(self) -> None:
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass


class FusedVideoTrack(MediaStreamTrack):
    """The outgoing video: the newest fused frame, each sent once."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self._newest: av.VideoFrame | None = None
        self._fresh = asyncio.Event()
        self.sent = FrameCounter()
        self.replaced = 0
        self.time_jumps = 0
        self._shift = 0
        self._last_pts: int | None = None

    def put(self, frame: av.VideoFrame) -> None:
        if self._newest is not None:
            self.replaced += 1
        self._newest = frame
        self._fresh.set()

    async def recv(self) -> av.VideoFrame:
        while self._newest is None:
            if self.readyState != "live":
                raise MediaStreamError
            self._fresh.clear()
            await self._fresh.wait()
        if self.readyState != "live":
            raise MediaStreamError
        frame, self._newest = self._newest, None
        self._keep_time_increasing(frame)
        self.sent.tick()
        return frame

    def _keep_time_increasing(self, frame: av.VideoFrame) -> None:
        """libvpx refuses a frame whose ``pts`` does not increase (and aiortc's sender then
        stops for good). Frames normally carry increasing camera times; after a jump back, later
        frames are shifted forward by one constant so that the time keeps increasing."""
        if frame.pts is None:
            return
        pts = frame.pts + self._shift
        if self._last_pts is not None and pts <= self._last_pts:
            step = round(FRAME_STEP_S / frame.time_base) if frame.time_base else 1
            self._shift += self._last_pts + max(1, step) - pts
            pts = frame.pts + self._shift
            self.time_jumps += 1
        frame.pts = pts
        self._last_pts = pts

    def stop(self) -> None:
        super().stop()
        self._fresh.set()
