"""The signaling consumer refuses what an attacker on the kiosks' network would send
(issue 9): unenrolled devices, a second call on a kiosk, a 1,000-candidate offer, loopback
candidates where they are not allowed, unreadable ports; none of it logs a traceback."""

import asyncio
import logging

import pytest
from channels.testing import WebsocketCommunicator

from kiosk import signaling, turn
from tests.support.enrolment import cookie, enrol_async
from tests.unit.test_kiosk_trust_rules import offer_with
from tests.unit.test_signaling import VIDEO_OFFER
from tests.unit.test_signaling_consumer import (  # noqa: F401 (fixtures)
    APP,
    WAIT,
    Worker,
    close_thread_connections,
    connect,
    consent,
    expect,
    expect_error,
    kiosks,
    redis_layer,
    send,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
    pytest.mark.usefixtures("kiosks"),
]


async def refused_at_connect(slug: str, token: str | None) -> tuple[dict, dict]:
    headers = [(b"cookie", cookie(slug, token).encode())] if token else []
    comm = WebsocketCommunicator(APP, f"/ws/kiosk/{slug}/", headers=headers)
    connected, _ = await comm.connect(timeout=WAIT)
    assert connected
    first = await comm.receive_json_from(timeout=WAIT)
    closed = await comm.receive_output(timeout=WAIT)
    await comm.disconnect()
    return first, closed


@pytest.mark.parametrize("mode", ["embedded", "redis"])
async def test_unenrolled_devices_get_no_hello(settings, mode):
    if mode == "embedded":  # the default of `make run`: in-memory layer, engine in process
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
        settings.MEDIA_ENGINE_IN_PROCESS = True
    other_kiosk = await enrol_async("counter-2")
    for token in (None, "not-a-token", other_kiosk):
        first, closed = await refused_at_connect("lobby", token)
        assert first["type"] == "error" and first["code"] == "not_enrolled", first
        assert closed == {"type": "websocket.close", "code": 4401}


async def test_consent_and_offer_need_the_device_still_enrolled():
    from channels.db import database_sync_to_async

    from kiosk import devices

    token = await enrol_async("lobby")
    comm, hello = await connect(token=token)
    assert hello["type"] == "hello"
    device = await database_sync_to_async(devices.authenticate)("lobby", token)
    # Revoked in the database only (no announcement reached this socket): consent refused.
    await database_sync_to_async(type(device).objects.filter(pk=device.pk).update)(
        revoked_at=device.rotated_at
    )
    await send(comm, type="consent", given=True, language="en")
    await expect_error(comm, "not_enrolled")
    assert (await comm.receive_output(timeout=WAIT))["code"] == 4401
    await comm.disconnect()


async def test_hello_gives_an_enrolled_kiosk_short_lived_turn_credentials(settings):
    settings.TURN_SECRET = "s3cret"
    settings.TURN_URLS = ["turn:turn.example.test:3478"]
    settings.ICE_SERVERS = [{"urls": "turn:t.example.test", "username": "u", "credential": "c"}]
    comm, hello = await connect()
    [server] = hello["ice_servers"]
    assert server["urls"] == ["turn:turn.example.test:3478"]
    assert server["username"].endswith(":lobby") and server["credential"] != "c"
    assert turn.verify("s3cret", server["username"], server["credential"])
    await comm.disconnect()


async def test_one_live_call_per_kiosk():
    first, _ = await connect()
    second, _ = await connect()
    await consent(first)
    await consent(second)
    await send(first, type="offer", sdp=VIDEO_OFFER)
    worker = Worker()
    await worker.take_offer()
    await expect(first, "state")
    await send(second, type="offer", sdp=VIDEO_OFFER)
    await expect_error(second, "kiosk_busy")
    assert (await expect(second, "state"))["state"] == "busy"
    assert (await expect(second, "ended"))["reason"] == "busy"
    await first.disconnect()
    await second.disconnect()
    # Once the first call ended, the kiosk calls again.
    third, _ = await connect()
    await consent(third)
    await send(third, type="offer", sdp=VIDEO_OFFER)
    await worker.take_offer()
    assert (await expect(third, "state"))["state"] == "connecting"
    await third.disconnect()


async def test_the_thousand_candidate_offer_never_reaches_a_worker():
    comm, _ = await connect()
    await consent(comm)
    await send(comm, type="offer", sdp=offer_with(1000))
    error = await expect_error(comm, "too_many_candidates")
    assert str(signaling.MAX_CANDIDATES) in error["message"]
    worker = Worker()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(worker.layer.receive("media-engine.offers"), 1.5)
    # Candidates in the SDP and trickled ones share one limit.
    await send(comm, type="offer", sdp=offer_with(signaling.MAX_CANDIDATES - 1))
    await worker.take_offer()
    await expect(comm, "state")
    line = {"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0"}
    await send(comm, type="candidate", candidate=line)
    await send(comm, type="candidate", candidate=line)
    await expect_error(comm, "too_many_candidates")
    await comm.disconnect()


async def test_loopback_candidates_are_refused_unless_allowed(settings):
    settings.KIOSK_NETWORKS = []  # the production default: loopback is not a kiosk network
    comm, _ = await connect()
    await consent(comm)
    await send(comm, type="offer", sdp=offer_with(2))
    worker = Worker()
    offer = await worker.take_offer()
    assert "a=candidate:" not in offer["sdp"]  # both loopback candidates were left out
    await expect(comm, "state")
    await worker.answer()
    await expect(comm, "answer")
    loopback = {"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0"}
    await send(comm, type="candidate", candidate=loopback)
    await send(comm, type="candidate", candidate=None)
    # Only the end-of-candidates reaches the worker; the loopback one was left out.
    assert (await worker.control_message())["candidate"] is None
    await comm.disconnect()


async def test_a_5000_digit_port_is_bad_sdp_counted_and_logs_no_traceback(caplog):
    caplog.set_level(logging.INFO)
    comm, _ = await connect()
    await consent(comm)
    for _ in range(19):
        await send(comm, type="offer", sdp=offer_with(0, port="9" * 5000))
        await expect_error(comm, "bad_sdp")
    await send(comm, type="offer", sdp=offer_with(0, port="9" * 5000))
    await expect_error(comm, "bad_sdp")
    await expect_error(comm, "too_many_errors")
    assert (await comm.receive_output(timeout=WAIT))["code"] == 4400
    await comm.disconnect()
    assert not [r for r in caplog.records if r.exc_info], "a client mistake logged a traceback"
