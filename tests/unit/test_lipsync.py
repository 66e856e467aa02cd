"""The agent's voice held back by the video pipeline's delay (media_engine/lipsync.py)."""

import asyncio
import fractions
import time

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from media_engine.lipsync import (
    LEAD_TOLERANCE_MS,
    MAX_DELAY_MS,
    MAX_STEP_MS,
    DelayedAudioTrack,
    PipelineDelay,
)


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


def test_the_hold_is_the_video_delay_minus_the_audio_delay_never_below_zero():
    delay = PipelineDelay(extra_ms=5.0)
    for _ in range(10):
        delay.add(0.0, 0.080)  # the video pipeline takes 80 ms
    assert delay.hold_ms() == pytest.approx(85.0)
    delay.set_audio_path(lambda: 30.0)  # the voice waited 30 ms in the receive buffer
    assert delay.hold_ms() == pytest.approx(55.0)
    delay.set_audio_path(lambda: 120.0)  # audio is the slower path: nothing is held
    assert delay.hold_ms() == 0.0
    delay.set_audio_path(lambda: -10.0)  # a measuring error never adds to the hold
    assert delay.hold_ms() == pytest.approx(85.0)
    off = PipelineDelay(enabled=False)
    off.add(0.0, 0.080)
    assert off.hold_ms() == 0.0


async def held_series(delay: PipelineDelay, frames: int, change_at: int, new_ms: float):
    track = DelayedAudioTrack(delay)
    track.attach(Microphone(frames=frames))
    held, targets = [], []
    for i in range(frames):
        if i == change_at:
            for _ in range(30):
                delay.add(0.0, new_ms / 1000)
        frame = await track.recv()
        held.append(track.current_ms)
        targets.append(delay.hold_ms())
        assert frame.pts is not None
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(track.recv(), 2.0)  # the microphone ended
    return np.array(held), np.array(targets)


async def test_audio_is_held_by_the_delay_approached_in_small_steps():
    delay = PipelineDelay()
    for _ in range(10):
        delay.add(0.0, 0.020)  # the pipeline takes 20 ms
    held, _ = await held_series(delay, frames=50, change_at=10, new_ms=60.0)
    assert held[0] == pytest.approx(20.0)  # starts at the hold: nothing played before
    steps = np.diff(held)
    assert np.abs(steps).max() <= MAX_STEP_MS + 1e-9  # never a jump
    assert held[-1] == pytest.approx(60.0)  # reached the pipeline's new delay


async def test_the_sound_never_leads_the_picture_by_more_than_the_tolerance():
    delay = PipelineDelay()
    for _ in range(10):
        delay.add(0.0, 0.010)
    held, targets = await held_series(delay, frames=40, change_at=5, new_ms=150.0)
    assert (targets - held).max() <= LEAD_TOLERANCE_MS + 1e-9  # lead bounded at every frame
    assert np.diff(held).max() > MAX_STEP_MS  # the voice paused rather than lead further
    assert held[-1] == pytest.approx(150.0)


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
