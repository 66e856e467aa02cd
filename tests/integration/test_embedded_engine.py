"""The embedded default: the same media worker inside the server process, started lazily by
``media_engine.embedded.ensure_started()``, on the in-memory channel layer and PostgreSQL."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connections

from kiosk.models import Kiosk
from media_engine import embedded, protocol
from tests.support.channel_call import ChannelCall

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def in_process(settings):
    settings.MEDIA_ENGINE_IN_PROCESS = True
    settings.MEDIA_ENGINE_MAX_SESSIONS = 1
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return settings


async def stop_embedded() -> None:
    await embedded.stop()
    # the worker read the switch on asgiref's shared thread: close that thread's connection so
    # that the test database can be dropped at the end
    await sync_to_async(connections.close_all)()


@pytest.fixture
def kiosk(transactional_db):
    return Kiosk.objects.create(slug="embedded-1", name="Embedded 1", engine="label")


async def test_the_embedded_worker_starts_once_and_serves_calls(in_process, kiosk):
    worker = embedded.ensure_started()
    try:
        assert worker is not None
        assert embedded.ensure_started() is worker  # lazily, once
        await asyncio.wait_for(worker.ready.wait(), 30)
        layer = get_channel_layer()

        call = ChannelCall(layer, kiosk.slug)
        await call.send_offer()
        await call.connect()
        assert call.answer["worker"] == worker.name
        await call.wait_frames(20)
        returned = call.peer.returned
        assert returned.labelled > 0 and returned.unlabelled == 0
        # each frame came back with its camera frame's RTP timestamp (the page matches them)
        assert returned.same_timestamp > 0 and returned.other_timestamp == 0

        # the worker is full (one session): another offer waits...
        waiting = ChannelCall(layer, kiosk.slug)
        await waiting.send_offer(deadline_s=60)
        await asyncio.sleep(1.5)
        assert "media.answer" not in waiting.types()

        # ...an operator ends the kiosk's sessions through the control group...
        await layer.group_send(
            protocol.CONTROL_GROUP,
            {"type": "sessions.end", "kiosk": kiosk.slug, "reason": "operator", "detail": "t"},
        )
        ended = await call.wait_for("media.ended", within=15)
        assert (ended["reason"], ended["detail"]) == ("operator", "t")
        # ...and the waiting offer gets the room
        await waiting.connect()
        await waiting.wait_frames(10)

        # sessions.end without any selector ends nothing
        await layer.group_send(protocol.CONTROL_GROUP, {"type": "sessions.end", "reason": "x"})
        await waiting.wait_frames(10)
        assert "media.ended" not in waiting.types()
        await call.close()
        await waiting.close()
    finally:
        await stop_embedded()
    assert worker.sessions == {}


async def test_the_embedded_worker_ends_its_sessions_when_stopped(in_process, kiosk):
    worker = embedded.ensure_started()
    call = ChannelCall(get_channel_layer(), kiosk.slug)
    try:
        await asyncio.wait_for(worker.ready.wait(), 30)
        await call.send_offer()
        await call.connect()
        await call.wait_frames(5)
    finally:
        await stop_embedded()
    ended = await call.wait_for("media.ended", within=10)
    assert ended["reason"] == "error" and "stopped" in ended["detail"]
    await call.close()


def test_ensure_started_needs_the_event_loop(in_process):
    with pytest.raises(RuntimeError, match="async code"):
        embedded.ensure_started()


async def test_ensure_started_does_nothing_in_production(settings):
    settings.MEDIA_ENGINE_IN_PROCESS = False
    assert embedded.ensure_started() is None


async def test_a_kiosk_that_vanishes_mid_call_is_torn_down(in_process, kiosk):
    """No bye, no RTCP BYE, the camera just stops: the session ends by itself ("disconnect")
    and the worker has room again."""
    worker = embedded.ensure_started()
    call = ChannelCall(get_channel_layer(), kiosk.slug)
    try:
        await asyncio.wait_for(worker.ready.wait(), 30)
        await call.send_offer()
        await call.connect()
        await call.wait_frames(5)
        call.peer.camera.frozen = True
        ended = await call.wait_for("media.ended", within=30)
        assert ended["reason"] == "disconnect" and "no camera frame" in ended["detail"]
        for _ in range(50):
            if not worker.sessions:
                break
            await asyncio.sleep(0.1)
        assert worker.sessions == {}
    finally:
        await call.close()
        await stop_embedded()


def lossy_network(transport, payload_type: int, *, drop_every: int, hold_every: int) -> dict:
    """Make an aiortc DTLS transport lose and reorder its outgoing video packets (first
    transmissions of ``payload_type`` only: NACKed retransmissions get through)."""
    from aiortc.rtp import is_rtcp

    send = transport._send_rtp
    state = {"sent": 0, "dropped": 0, "reordered": 0, "held": None}

    async def lossy_send(data: bytes) -> None:
        if is_rtcp(data) or (data[1] & 0x7F) != payload_type:
            await send(data)
            return
        state["sent"] += 1
        if state["sent"] % drop_every == 0:
            state["dropped"] += 1
            return
        if state["held"] is None and state["sent"] % hold_every == 0:
            state["held"] = data  # goes out after the next packet
            return
        await send(data)
        if state["held"] is not None:
            held, state["held"] = state["held"], None
            state["reordered"] += 1
            await send(held)

    transport._send_rtp = lossy_send
    return state


async def test_frames_come_back_whole_through_packet_loss_and_reordering(in_process, kiosk):
    """The complete-frame release in a real call whose camera packets are lost (1 in 23) and
    reordered (1 in 7): every frame that comes back decodes with its stamp, label and
    timestamp, and the server released frames at their marker packets."""
    import re

    worker = embedded.ensure_started()
    call = ChannelCall(get_channel_layer(), kiosk.slug)
    try:
        await asyncio.wait_for(worker.ready.wait(), 30)
        await call.send_offer()
        answer = await call.wait_for("media.answer", within=30)
        vp8 = int(re.search(r"a=rtpmap:(\d+) VP8/90000", answer["sdp"]).group(1))
        sender = call.peer.pc.getTransceivers()[0].sender
        network = lossy_network(sender.transport, vp8, drop_every=23, hold_every=7)
        await call.connect()
        await call.wait_frames(150, within=90)
        returned = call.peer.returned
        assert network["dropped"] >= 8 and network["reordered"] >= 25, network
        # nothing corrupt came back: every frame carries a readable stamp and the label
        assert returned.frames - returned.stamped <= 2, (returned.frames, returned.stamped)
        assert returned.unlabelled == 0 and returned.other_timestamp == 0
        session = worker.sessions[call.session_id]
        receiver = session._pc.getTransceivers()[0].receiver
        buffer = receiver._RTCRtpReceiver__jitter_buffer
        assert buffer.frames_at_marker > 100, vars(buffer)
        await call.close()
    finally:
        await stop_embedded()
