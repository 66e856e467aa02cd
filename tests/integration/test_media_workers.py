"""Two real ``manage.py media_engine`` processes behind the Redis channel layer, PostgreSQL
for the fusion switch, and real aiortc kiosk peers sending stamped 640×480 frames.

The WebSocket path in front of this is tested by the signaling tests; here the test plays the
signaling consumer on the channel layer (``tests/support/channel_call.py``).
"""

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from kiosk.models import FusionSwitch, Kiosk
from media_engine import protocol
from tests.support.channel_call import ChannelCall
from tests.support.media_workers import media_workers

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def kiosk(transactional_db):
    return Kiosk.objects.create(slug="counter-1", name="Counter 1", engine="label")


@pytest.fixture
def workers(redis_url, layer, kiosk):
    with media_workers(connection.settings_dict, redis_url, count=2, max_sessions=1) as running:
        yield running
    for worker in running:  # shown by pytest when the test failed
        print(f"--- {worker.name} (exit {worker.process.returncode})\n{worker.output()}")


def _write(change) -> None:
    """Run one ORM write and close this thread's connection (the test database must be
    droppable at the end of the run)."""
    try:
        change()
    finally:
        connection.close()


async def set_switch(layer, enabled: bool) -> None:
    await sync_to_async(_write)(
        lambda: FusionSwitch.objects.update_or_create(
            pk=1, defaults={"enabled": enabled, "reason": "test"}
        )
    )
    await layer.group_send(protocol.CONTROL_GROUP, {"type": "fusion.switch", "kiosk": None})


def assert_labelled(call: ChannelCall) -> None:
    returned = call.peer.returned
    assert returned.labelled > 0
    # every stamped frame that came back carries the label...
    assert returned.unlabelled == 0, (returned.labelled, returned.unlabelled)
    # ...and the RTP timestamp of the camera frame it was made from
    assert returned.same_timestamp > 0
    assert returned.other_timestamp == 0, (returned.same_timestamp, returned.other_timestamp)


async def test_two_workers_share_the_calls_and_frames_come_back_stamped_and_labelled(
    layer, workers, kiosk
):
    first, second = ChannelCall(layer, kiosk.slug), ChannelCall(layer, kiosk.slug)
    third = ChannelCall(layer, kiosk.slug)
    try:
        await first.send_offer()
        await first.connect()
        await second.send_offer()
        await second.connect()
        # one session per worker: both workers took one
        assert {first.answer["worker"], second.answer["worker"]} == {"worker-1", "worker-2"}
        assert first.answer["control_channel"] != second.answer["control_channel"]
        await first.wait_frames(30)
        await second.wait_frames(30)
        assert_labelled(first)
        assert_labelled(second)
        for call in (first, second):
            await call.wait_for("media.state", state="live")

        # the page's own loop figure goes into the session stats
        await first.control("session.client_stats", stats={"loop_ms": 41.5})
        stats = await first.wait_for("media.stats", within=10)
        assert stats["stats"]["engine"] == "label"
        deadline = time.monotonic() + 10
        while first.messages[-1]["type"] != "media.stats" or (
            first.messages[-1]["stats"]["loop_ms"] != 41.5
        ):
            assert time.monotonic() < deadline, first.messages[-3:]
            await asyncio.sleep(0.2)
        latest = first.messages[-1]["stats"]
        width, height = latest["processing_size"]  # adaptive resolution may go smaller
        assert width <= 640 and height <= 480 and abs(width / height - 4 / 3) < 0.02
        assert latest["fps_in"] > 0 and latest["frames_out"] > 0
        assert {"to_bgr", "label", "total"} <= set(latest["stage_ms"])

        # both workers are full: nobody takes a third offer...
        await third.send_offer(deadline_s=60)
        await asyncio.sleep(3)
        assert third.messages == [] or "media.answer" not in third.types()
        # ...until a session ends: then the worker with room takes it
        await first.control("session.bye", reason="bye")
        ended = await first.wait_for("media.ended", within=15)
        assert ended["reason"] == "bye"
        await third.connect()
        assert third.answer["worker"] == first.answer["worker"]
        await third.wait_frames(15)
        assert_labelled(third)
    finally:
        for call in (first, second, third):
            await call.close()


async def test_switch_off_sends_the_paused_picture_and_back_on_resumes(layer, workers, kiosk):
    call = ChannelCall(layer, kiosk.slug)
    try:
        await call.send_offer()
        await call.connect()
        await call.wait_frames(15)

        await set_switch(layer, False)
        await call.wait_frames(5, stamped=False)  # how fast: bench/killswitch.py measures it
        await call.wait_for("media.state", state="paused", within=10)
        # no camera picture while paused
        stamped_before = call.peer.returned.stamped
        await call.wait_frames(20, stamped=False)
        assert call.peer.returned.stamped - stamped_before <= 2  # frames in flight

        await set_switch(layer, True)
        await call.wait_frames(15)
        await call.wait_for("media.state", state="live", detail="face fusion is on", within=10)
        assert_labelled(call)

        # the per-kiosk flag counts too, and a missed nudge is caught by the timer
        await sync_to_async(_write)(
            lambda: Kiosk.objects.filter(slug=kiosk.slug).update(fusion_enabled=False)
        )
        await call.wait_frames(5, stamped=False, within=20)
    finally:
        await call.close()


async def test_bad_offers_get_clear_refusals_and_the_worker_keeps_serving(layer, workers, kiosk):
    from aiortc import RTCPeerConnection

    audio_only = RTCPeerConnection()
    audio_only.addTransceiver("audio")
    await audio_only.setLocalDescription(await audio_only.createOffer())
    cases = [
        ({"sdp": audio_only.localDescription.sdp}, "no_video"),
        ({"sdp": "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nnonsense\r\n"}, "bad_offer"),
        ({"engine": "no-such-engine"}, "engine_unavailable"),
        ({"deadline_s": -1}, "expired"),
        ({"sdp_type": "answer"}, "bad_offer"),
    ]
    calls = []
    try:
        for extra, code in cases:
            call = ChannelCall(layer, kiosk.slug, engine=extra.pop("engine", "label"))
            calls.append(call)
            deadline_s = extra.pop("deadline_s", protocol.OFFER_TIMEOUT_S)
            sdp = extra.pop("sdp", None)
            if sdp is None:
                from tests.support.loopclient import KioskPeer

                call.peer = KioskPeer()
                sdp = await call.peer.offer()
            await call.send_offer(sdp, deadline_s=deadline_s, **extra)
            refused = await call.wait_for("media.refused", within=20)
            assert refused["code"] == code, refused
            assert refused["message"]
        # a good offer still works on the same workers
        good = ChannelCall(layer, kiosk.slug)
        calls.append(good)
        await good.send_offer()
        await good.connect()
        await good.wait_frames(10)
    finally:
        await audio_only.close()
        for call in calls:
            await call.close()


async def test_a_killed_worker_does_not_stop_the_other(layer, workers, kiosk):
    first, second = ChannelCall(layer, kiosk.slug), ChannelCall(layer, kiosk.slug)
    try:
        await first.send_offer()
        await first.connect()
        await second.send_offer()
        await second.connect()
        await first.wait_frames(10)
        await second.wait_frames(10)
        by_name = {w.name: w for w in workers}
        victim = by_name[first.answer["worker"]]
        survivor = by_name[second.answer["worker"]]
        victim.kill()
        await second.wait_frames(45)  # still served
        assert survivor.process.poll() is None
        assert_labelled(second)

        # SIGTERM: the survivor ends its session with a reason, then exits cleanly
        code = await asyncio.to_thread(survivor.terminate)
        ended = await second.wait_for("media.ended", within=15)
        assert ended["reason"] == "error" and "SIGTERM" in ended["detail"]
        assert code == 0, survivor.output()
    finally:
        await first.close()
        await second.close()


async def test_an_unreadable_switch_fails_closed(redis_url, layer, kiosk):
    """A worker that cannot read the switch (its database is unreachable) sends only the
    paused picture: never a fused or camera frame."""
    settings = dict(connection.settings_dict, NAME="no_such_database_for_media_tests")
    with media_workers(settings, redis_url, count=1) as (worker,):
        call = ChannelCall(layer, kiosk.slug)
        try:
            await call.send_offer()
            await call.connect()
            await call.wait_frames(20, stamped=False)
            assert call.peer.returned.stamped == 0
            await call.wait_for("media.state", state="paused", within=10)
        finally:
            await call.close()
        assert "fail closed" in worker.output()
