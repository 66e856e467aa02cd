"""The switch against real media workers: two ``manage.py media_engine`` processes on the
Redis channel layer, PostgreSQL, and real aiortc kiosk peers.

- The dashboard's service (what the operator's click calls) reaches every worker: each
  session turns to the "service paused" picture, and back to fused video when re-enabled.
- A worker stops fused video on an "off" broadcast before its re-read, and the database
  stays the truth (the re-read brings fused video back when the row says "on").
- A worker that cannot read the switch fails closed: it never sends fused video.
"""

import asyncio
import concurrent.futures

import pytest
from django.db import connection

from kiosk.models import Kiosk
from kiosk.settings import redis_channel_layer
from media_engine import protocol
from tests.dashboard_support import staff_user
from tests.support.channel_call import ChannelCall
from tests.support.media_workers import media_workers

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def kiosks(transactional_db):
    return [
        Kiosk.objects.create(slug=f"counter-{n}", name=f"Counter {n}", engine="label")
        for n in (1, 2)
    ]


async def _in_thread(change):
    """Run ORM work (and the switch's broadcast) in a fresh thread of its own, as a web
    request would, and close its connection (the test database must be droppable at the
    end of the run). A fresh thread: asgiref would otherwise run the broadcast's
    ``async_to_sync`` on this test's event loop."""

    def run():
        try:
            return change()
        finally:
            connection.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return await asyncio.get_running_loop().run_in_executor(pool, run)


async def _calls(layer, kiosks) -> list[ChannelCall]:
    calls = []
    for kiosk in kiosks:
        call = ChannelCall(layer, kiosk.slug)
        await call.send_offer()
        await call.connect(within=60)
        calls.append(call)
    for call in calls:
        await call.wait_frames(5, within=60)
    return calls


async def test_the_operators_click_reaches_every_worker(layer, redis_url, kiosks, settings):
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {"default": redis_channel_layer(redis_url)}
    channel_layers.backends.clear()
    from kiosk.switch import disable_fusion, enable_fusion

    operator = await _in_thread(lambda: staff_user("operator"))
    with media_workers(connection.settings_dict, redis_url, count=2, max_sessions=1) as workers:
        calls = await _calls(layer, kiosks)
        try:
            assert {c.answer["worker"] for c in calls} == {w.name for w in workers}
            await _in_thread(lambda: disable_fusion(operator, "test: stop everything"))
            for call in calls:
                await call.wait_frames(5, within=30, stamped=False)
                await call.wait_for("media.state", state="paused", within=30)
            await _in_thread(lambda: enable_fusion(operator, "test: back on"))
            for call in calls:
                await call.wait_frames(5, within=30)
        finally:
            for call in calls:
                await call.close()
    channel_layers.backends.clear()


async def test_an_off_broadcast_pauses_at_once_and_the_row_stays_the_truth(
    layer, redis_url, kiosks
):
    with media_workers(connection.settings_dict, redis_url, count=1, max_sessions=2):
        calls = await _calls(layer, kiosks[:1])
        try:
            # The row says "on"; a forged or early "off" only pauses, never starts anything.
            await layer.group_send(
                protocol.CONTROL_GROUP, {"type": "fusion.switch", "kiosk": None, "enabled": False}
            )
            # Paused at once (the worker says so), then the re-read of the row ("on")
            # resumes it: frames may not even have time to show the paused picture.
            call = calls[0]
            await call.wait_for("media.state", state="paused", within=30)
            await _wait_state_after(call, "paused", "live")
            await call.wait_frames(5, within=30)
            # An "on" broadcast is never believed without the row.
            await _in_thread(
                lambda: Kiosk.objects.filter(slug=kiosks[0].slug).update(fusion_enabled=False)
            )
            await layer.group_send(
                protocol.CONTROL_GROUP, {"type": "fusion.switch", "kiosk": None, "enabled": True}
            )
            await calls[0].wait_frames(5, within=30, stamped=False)
            returned = calls[0].peer.returned
            stamped = returned.stamped
            await calls[0].wait_frames(10, within=30, stamped=False)
            assert returned.stamped == stamped
        finally:
            for call in calls:
                await call.close()


async def test_a_worker_that_cannot_read_the_switch_sends_no_fused_video(layer, redis_url, kiosks):
    unreachable = dict(connection.settings_dict, NAME="no_such_database_for_the_switch")
    with media_workers(unreachable, redis_url, count=1, max_sessions=1) as workers:
        calls = await _calls_paused(layer, kiosks[0])
        try:
            returned = calls.peer.returned
            await calls.wait_frames(20, within=60, stamped=False)
            assert returned.stamped == 0, "fused video from a worker that cannot read the switch"
            assert "fail closed" in workers[0].output()
        finally:
            await calls.close()


async def _wait_state_after(call: ChannelCall, first: str, then: str, within: float = 30) -> None:
    """Until the worker said state ``then`` after it said ``first``."""
    import time

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        states = [m["state"] for m in call.messages if m["type"] == "media.state"]
        if first in states and then in states[states.index(first) + 1 :]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {then!r} after {first!r}: {states}")


async def _calls_paused(layer, kiosk) -> ChannelCall:
    call = ChannelCall(layer, kiosk.slug)
    await call.send_offer()
    await call.connect(within=60)
    return call
