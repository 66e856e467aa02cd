"""The agent's voice held back by the video pipeline's delay (media_engine/lipsync.py)."""

import asyncio
import fractions
import time

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from media_engine.lipsync import MAX_DELAY_MS, MAX_STEP_MS, DelayedAudioTrack, PipelineDelay


class Microphone(MediaStreamTrack):
    kind = "audio"

    def __init__(self, frames: int) -> None:
        super().__init__()
        self.left = frames
        self.count = 0

    async def recv(self) -> av.AudioFrame:
        if self.left == 0:
            raise MediaStreamError
        await asyncio.sleep(0.02)
        self.left -= 1
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 960), np.int16), format="s16", layout="mono"
        )
        frame.sample_rate, frame.pts = 48000, self.count * 960
        frame.time_base = fractions.Fraction(1, 48000)
        self.count += 1
        return frame


def test_the_delay_is_the_median_of_the_pipeline_times_and_bounded():
    delay = PipelineDelay(window=5, extra_ms=3.0)
    assert delay.median_ms() == 0.0
    for ms in (50, 60, 55, 5000, -1):  # the last two are measuring errors: dropped
        delay.add(10.0, 10.0 + ms / 1000)
    assert delay.median_ms() == pytest.approx(58.0)
    assert PipelineDelay(enabled=False).median_ms() == 0.0
    big = PipelineDelay()
    big.add(0.0, 0.399)
    big.extra_ms = 100.0
    assert big.median_ms() == MAX_DELAY_MS


async def test_audio_is_held_by_the_delay_approached_in_small_steps():
    delay = PipelineDelay()
    for _ in range(10):
        delay.add(0.0, 0.080)  # the pipeline takes 80 ms
    track = DelayedAudioTrack(delay)
    track.attach(Microphone(frames=60))
    held = []
    for _ in range(60):
        frame = await track.recv()
        held.append(track.current_ms)
        assert frame.pts is not None
    steps = np.diff([0.0, *held])
    assert steps.max() <= MAX_STEP_MS + 1e-9  # never a jump
    assert held[-1] == pytest.approx(80.0)  # reached the pipeline's delay
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(track.recv(), 2.0)  # the microphone ended


async def test_a_frame_leaves_no_earlier_than_its_arrival_plus_the_hold():
    delay = PipelineDelay()
    track = DelayedAudioTrack(delay)
    track.current_ms = 60.0
    for _ in range(5):
        delay.add(0.0, 0.060)
    track.attach(Microphone(frames=3))
    started = time.monotonic()
    await track.recv()
    assert time.monotonic() - started >= 0.02 + 0.058
    track.stop()
