"""A session never sends a frame that was fused while the switch went off.

The pipeline runs on the session's own thread; a frame it started while fusion was allowed
may finish after the switch went off. That frame must be dropped, not sent: the last fused
frame the kiosk sees is one made before the switch changed.
"""

import asyncio
import threading
import time

import av
import numpy as np
from channels.layers import InMemoryChannelLayer

from media_engine.assembly import build_pipeline
from media_engine.paused import paused_frame
from media_engine.session import MediaSession
from media_engine.tracks import NewestFrameReader
from tests.unit.test_tracks import QueueTrack


class SlowPipeline:
    """The real label pipeline, made slow so that the switch can change mid-frame."""

    def __init__(self) -> None:
        self.inner = build_pipeline("label", None)
        self.started = threading.Event()
        self.release = threading.Event()

    def process(self, frame, *, fusion_allowed: bool):
        self.started.set()
        self.release.wait(10)
        return self.inner.process(frame, fusion_allowed=fusion_allowed)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def camera_frame(pts: int) -> av.VideoFrame:
    image = np.full((240, 320, 3), 90, np.uint8)
    image[::8] = 200  # something that is not the paused picture
    frame = av.VideoFrame.from_ndarray(image, format="bgr24")
    frame.pts = pts
    return frame


def is_paused(frame: av.VideoFrame) -> bool:
    picture = paused_frame(frame.width, frame.height).astype(np.int16)
    return float(np.abs(frame.to_ndarray(format="bgr24").astype(np.int16) - picture).mean()) < 3


async def wait_for(predicate, limit_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_a_frame_fused_while_the_switch_went_off_is_never_sent():
    pipeline = SlowPipeline()
    session = MediaSession(
        session_id="s-1",
        kiosk="demo",
        reply_channel="reply",
        worker="w-1",
        channel_layer=InMemoryChannelLayer(),
        pipeline=pipeline,
        engine_name="label",
        fusion_allowed=True,
    )
    track = QueueTrack()
    reader = NewestFrameReader(track)
    loop_task = asyncio.ensure_future(session._frame_loop(reader))
    try:
        await track.queue.put(camera_frame(0))
        await wait_for(pipeline.started.is_set)  # frame 0 is being fused now
        await session.set_fusion_allowed(False)  # the switch goes off meanwhile
        pipeline.release.set()
        await track.queue.put(camera_frame(3000))
        await wait_for(lambda: session._outgoing._newest is not None)
        sent = session._outgoing._newest
        assert is_paused(sent), "a frame fused before the switch went off was sent after it"
        assert pipeline.inner.paused_frames == 1
    finally:
        loop_task.cancel()
        await reader.stop()
        session._executor.shutdown(wait=False, cancel_futures=True)
