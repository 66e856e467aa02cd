"""A real aiortc call on an impaired link (user space, tests/support/impairment.py): under
a bandwidth cap the sender's bitrate and then the resolution step down; after a blackout
the picture comes back by itself (NACK, keyframe request). The figures per profile belong
to bench/network.py; the timeouts here are generous (a shared CI machine)."""

import asyncio
import time

import pytest

from tests.support.impairment import Profile
from tests.support.weak_network import weak_call

pytestmark = [pytest.mark.integration]

CAP_BPS = 600_000
CAPPED_S = 25.0  # the encoder starts at 1.5 Mb/s: a few receiver reports to come down
RECOVER_S = 10.0


async def test_a_capped_link_steps_the_bitrate_then_the_rung_down_and_a_blackout_recovers():
    async def body(call):
        await call.run(CAPPED_S)
        capped = list(call.samples)
        # the picture still flows under the cap
        assert capped[-1].frames - capped[len(capped) // 2].frames > 20, capped[-8:]
        # lift the cap, pull the cable for a second, plug it back
        call.set_profile(Profile("clean"))
        await asyncio.sleep(2.0)
        frames_before = call.sample().frames
        end = call.blackout(1.0)
        await asyncio.sleep(1.0)
        assert call.sample().frames - frames_before <= 2  # nothing came through it
        recovered_at = None
        while time.monotonic() < end + RECOVER_S and recovered_at is None:  # bounded
            await asyncio.sleep(0.1)
            if call.sample().frames >= frames_before + 10:
                recovered_at = time.monotonic()
        call.recovered_s = None if recovered_at is None else recovered_at - end
        call.capped = capped

    call = await weak_call(Profile("cap", rate_bps=CAP_BPS, delay_ms=10), body)
    targets = [s.target_bps for s in call.capped if s.target_bps]
    # the encoder started above the cap and the loss-based controller took it under it
    assert targets[0] > CAP_BPS and min(targets) < CAP_BPS, targets
    # then the ladder stepped down on the bitrate (720p -> 540p at least)
    assert call.capped[-1].rung != "720p", call.capped[-5:]
    reasons = {s.reason for s in call.capped}
    assert any(r and r.startswith("down: bitrate") for r in reasons), reasons
    # and the picture came back after the blackout by itself
    assert call.recovered_s is not None, call.samples[-10:]
