"""Sound in step with picture: the agent's audio held back by the difference of the paths.

The agent's camera frames go through perception and a fusion engine before the customer sees
them; the agent's voice needs no such work. Sent as it comes, the voice would lead the lips by
the pipeline's time. ``PipelineDelay`` measures both paths through the worker: the video's per
frame (camera frame received -> fused frame handed to the sender, a running median) and the
audio's (how long the agent's audio packets waited in the worker's receive buffer,
``media_engine/audiojitter.py``). The hold is the video's delay minus the audio's, never below
zero: when the audio is the slower path nothing is held (holding would only make it later).
``DelayedAudioTrack`` releases each audio frame that long after it arrived, so sound and
picture leave the worker together.

Changes of the hold are followed smoothly (at most ``MAX_STEP_MS`` per audio frame), so the
voice never jumps, except that the sound never leads the picture by more than
``LEAD_TOLERANCE_MS`` (the broadcast tolerance): when the hold must grow faster, the voice
pauses instead. The held audio is bounded (``MAX_DELAY_MS``).
"""

from __future__ import annotations

import asyncio
import collections
import statistics
import time
from collections.abc import Callable

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

MAX_DELAY_MS = 400.0
MAX_STEP_MS = 2.0  # per 20 ms audio frame: a 10% speed change at most, never a jump
WINDOW = 30  # frames in the running median (1 s at 30 fps)
LEAD_TOLERANCE_MS = 45.0  # sound before picture: never more than this (broadcast tolerance)


class PipelineDelay:
    """The running median of the video pipeline's delay, in milliseconds."""

    def __init__(self, window: int = WINDOW, extra_ms: float = 0.0, enabled: bool = True) -> None:
        self._samples: collections.deque[float] = collections.deque(maxlen=window)
        # A fixed addition: how much slower video is than audio outside the worker (the
        # agent's video encoder, the customer's buffers); may be negative. From settings.
        self.extra_ms = extra_ms
        self.enabled = enabled  # off: the voice is not held (the bench's baseline)
        self._audio_path: Callable[[], float] = lambda: 0.0

    def set_audio_path(self, measure: Callable[[], float]) -> None:
        """``measure()``: the audio's own delay through the worker now, in milliseconds."""
        self._audio_path = measure

    def audio_ms(self) -> float:
        return max(0.0, float(self._audio_path()))

    def add(self, received_at: float, sent_at: float) -> None:
        ms = (sent_at - received_at) * 1000.0
        if 0.0 <= ms <= MAX_DELAY_MS:
            self._samples.append(ms)

    def median_ms(self) -> float:
        """The video's measured delay (plus ``extra_ms``) when enabled, else 0."""
        return self.measured_ms() if self.enabled else 0.0

    def hold_ms(self) -> float:
        """What the voice is held by: video's delay minus audio's, at least 0; 0 when off."""
        if not self.enabled:
            return 0.0
        return max(0.0, min(MAX_DELAY_MS, self.measured_ms() - self.audio_ms()))

    def measured_ms(self) -> float:
        if not self._samples:
            return 0.0
        return min(MAX_DELAY_MS, statistics.median(self._samples) + self.extra_ms)


class DelayedAudioTrack(MediaStreamTrack):
    """An audio track that plays ``source`` late by ``delay.hold_ms()``.

    ``source`` may be attached later (``attach``): until then ``recv`` waits (the customer's
    peer connection is answered before the agent's exists)."""

    kind = "audio"

    def __init__(self, delay: PipelineDelay) -> None:
        super().__init__()
        self.delay = delay
        self.current_ms = 0.0
        self._queue: collections.deque[tuple[float, av.AudioFrame]] = collections.deque()
        self._arrived = asyncio.Event()
        self._reader: asyncio.Task | None = None
        self.frames_in = 0
        self.frames_out = 0

    def attach(self, source: MediaStreamTrack) -> None:
        if self._reader is None:
            self._reader = asyncio.ensure_future(self._read(source))

    async def _read(self, source: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await source.recv()
                self._queue.append((time.monotonic(), frame))
                self.frames_in += 1
                if len(self._queue) > MAX_DELAY_MS / 10:  # bounded: drop the oldest
                    self._queue.popleft()
                self._arrived.set()
        except MediaStreamError:
            pass
        finally:
            self._arrived.set()

    def _step_towards(self, target_ms: float) -> float:
        if self.frames_out == 0:  # nothing played yet: start at the hold, no jump to hear
            self.current_ms = target_ms
            return self.current_ms
        step = max(-MAX_STEP_MS, min(MAX_STEP_MS, target_ms - self.current_ms))
        # Never let the sound lead the picture by more than the tolerance: pause instead.
        self.current_ms = max(self.current_ms + step, target_ms - LEAD_TOLERANCE_MS)
        return self.current_ms

    async def recv(self) -> av.AudioFrame:
        while not self._queue:
            if self.readyState != "live" or (self._reader is not None and self._reader.done()):
                raise MediaStreamError
            self._arrived.clear()
            await self._arrived.wait()
        arrived, frame = self._queue[0]
        due = arrived + self._step_towards(self.delay.hold_ms()) / 1000.0
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        if self.readyState != "live":
            raise MediaStreamError
        self._queue.popleft()
        self.frames_out += 1
        return frame

    def stop(self) -> None:
        super().stop()
        if self._reader is not None:
            self._reader.cancel()
        self._arrived.set()
