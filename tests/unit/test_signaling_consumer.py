"""The signaling consumer over the real Redis channel layer and the real database.

The media worker's side is played by the test on the channel layer, message by message, as
media_engine/protocol.py describes it: that is how the consumer's routing, timers and
records can each be checked. tests/integration/ runs the same paths against real workers.
"""

import asyncio
import json
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from channels_redis.core import RedisChannelLayer
from django.conf import settings
from django.db import connections

from consent.models import KioskSession
from kiosk import signaling
from kiosk.models import Engine, FusionSwitch, Kiosk
from kiosk.routing import websocket_urlpatterns
from kiosk.settings import redis_channel_layer
from media_engine import protocol
from tests.support.enrolment import cookie, enrol_async
from tests.unit.test_signaling import AUDIO_ONLY_OFFER, VIDEO_OFFER

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

APP = URLRouter(websocket_urlpatterns)
WAIT = 10  # seconds; generous for a loaded machine


@pytest.fixture(autouse=True)
def redis_layer(settings, redis_url, monkeypatch):
    """The real Redis channel layer, with a prefix of its own so tests never share offers."""
    prefix = f"sigtest-{uuid.uuid4().hex[:8]}"
    settings.CHANNEL_LAYERS = {"default": redis_channel_layer(redis_url, prefix=prefix)}
    settings.MEDIA_ENGINE_IN_PROCESS = False
    settings.ICE_SERVERS = [{"urls": "stun:stun.example.test:3478"}]
    settings.KIOSK_NETWORKS = ["127.0.0.0/8"]  # the tests' candidates are on loopback
    # The consumer's database calls run in worker threads: close their connections after
    # each call so that the test database can be dropped at the end.
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)


@pytest.fixture(autouse=True)
async def close_thread_connections():
    """The consumer's database calls run in asgiref's thread; close its connection after
    each test so that the test database can be dropped at the end of the run."""
    yield
    await database_sync_to_async(connections.close_all)()


@pytest.fixture
def kiosks(db):
    FusionSwitch.objects.update_or_create(pk=1, defaults={"enabled": True})
    lobby = Kiosk.objects.create(slug="lobby", name="Lobby", engine=Engine.LABEL)
    counter = Kiosk.objects.create(slug="counter-2", name="Counter 2", engine=Engine.LABEL)
    return lobby, counter


ENROL = "enrol"


async def connect(
    slug: str = "lobby", token: str | None = ENROL
) -> tuple[WebsocketCommunicator, dict]:
    """The kiosk's socket from an enrolled device (a new enrolment unless ``token`` is given)."""
    if token == ENROL:
        token = await enrol_async(slug)
    headers = [(b"cookie", cookie(slug, token).encode())] if token else []
    comm = WebsocketCommunicator(APP, f"/ws/kiosk/{slug}/", headers=headers)
    connected, _ = await comm.connect(timeout=WAIT)
    assert connected
    return comm, await comm.receive_json_from(timeout=WAIT)


async def send(comm: WebsocketCommunicator, **message) -> None:
    await comm.send_to(text_data=json.dumps(message))


async def expect(comm: WebsocketCommunicator, type_: str) -> dict:
    message = await comm.receive_json_from(timeout=WAIT)
    assert message["type"] == type_, message
    return message


async def expect_error(comm: WebsocketCommunicator, code: str) -> dict:
    message = await expect(comm, "error")
    assert message["code"] == code, message
    assert message["message"]
    return message


async def consent(comm: WebsocketCommunicator, given: bool = True) -> str:
    await send(comm, type="consent", given=given, language="zh-hans")
    return (await expect(comm, "consent_ok"))["session_id"]


async def session_row(session_id: str) -> KioskSession:
    return await database_sync_to_async(KioskSession.objects.get)(pk=session_id)


class Worker:
    """The test playing one media worker on the channel layer."""

    def __init__(self) -> None:
        # A layer instance of its own, as a worker process has.
        self.layer = RedisChannelLayer(**settings.CHANNEL_LAYERS["default"]["CONFIG"])
        self.control = ""
        self.offer: dict = {}

    async def take_offer(self) -> dict:
        self.offer = await asyncio.wait_for(self.layer.receive(protocol.OFFERS_CHANNEL), WAIT)
        self.control = await self.layer.new_channel("worker-test.")
        return self.offer

    async def reply(self, type_: str, **fields) -> None:
        message = {"type": type_, "session_id": self.offer["session_id"], **fields}
        await self.layer.send(self.offer["reply_channel"], message)

    async def answer(self) -> None:
        await self.reply(
            "media.answer",
            sdp=VIDEO_OFFER.replace("o=- 1 2", "o=- 3 4"),
            sdp_type="answer",
            worker="worker-test-1",
            control_channel=self.control,
        )

    async def control_message(self) -> dict:
        return await asyncio.wait_for(self.layer.receive(self.control), WAIT)


async def live_call(comm: WebsocketCommunicator) -> tuple[str, Worker]:
    session_id = await consent(comm)
    await send(comm, type="offer", sdp=VIDEO_OFFER)
    worker = Worker()
    offer = await worker.take_offer()
    assert (await expect(comm, "state"))["state"] == "connecting"
    await worker.answer()
    answer = await expect(comm, "answer")
    assert answer["sdp_type"] == "answer" and answer["sdp"]
    assert offer["session_id"] == session_id
    return session_id, worker


async def test_hello_names_the_kiosk_and_ice_servers(kiosks):
    comm, hello = await connect()
    assert hello["type"] == "hello"
    assert hello["kiosk"]["slug"] == "lobby"
    assert hello["ice_servers"] == [{"urls": "stun:stun.example.test:3478"}]
    assert hello["limits"]["max_sdp_bytes"] == signaling.MAX_SDP_BYTES
    assert isinstance(hello["consent_texts"], list)
    await comm.disconnect()


async def test_unknown_kiosk_gets_an_error_and_is_closed(kiosks):
    comm = WebsocketCommunicator(APP, "/ws/kiosk/no-such-kiosk/")
    connected, _ = await comm.connect(timeout=WAIT)
    assert connected
    error = await expect_error(comm, "unknown_kiosk")
    assert "no-such-kiosk" in error["message"]
    closed = await comm.receive_output(timeout=WAIT)
    assert closed == {"type": "websocket.close", "code": 4404}
    await comm.disconnect()
    # ...and the server keeps serving a real kiosk.
    other, hello = await connect("counter-2")
    assert hello["kiosk"]["slug"] == "counter-2"
    await other.disconnect()


async def test_malformed_json_is_an_error_and_the_socket_stays_usable(kiosks):
    comm, _ = await connect()
    await comm.send_to(text_data='{"type": "consent", "given": tru')
    await expect_error(comm, "bad_json")
    await comm.send_to(bytes_data=b"\x00\x01")
    await expect_error(comm, "bad_message")
    assert await consent(comm)
    await comm.disconnect()


async def test_unknown_type_is_an_error_and_the_socket_stays_usable(kiosks):
    comm, _ = await connect()
    await send(comm, type="subscribe", topic="all")
    error = await expect_error(comm, "unknown_type")
    assert "subscribe" in error["message"]
    assert await consent(comm)
    await comm.disconnect()


async def test_oversized_message_and_sdp(kiosks):
    comm, _ = await connect()
    await consent(comm)
    await send(comm, type="stats", pad="x" * (signaling.MAX_MESSAGE_BYTES + 1))
    await expect_error(comm, "message_too_large")
    big = VIDEO_OFFER + "a=x-pad:" + "p" * signaling.MAX_SDP_BYTES + "\r\n"
    await send(comm, type="offer", sdp=big)
    await expect_error(comm, "sdp_too_large")
    # The refused offer did not count: a good one still goes out.
    await send(comm, type="offer", sdp=VIDEO_OFFER)
    assert (await Worker().take_offer())["sdp"] == VIDEO_OFFER
    await comm.disconnect()


async def test_offer_without_video_is_refused(kiosks):
    comm, _ = await connect()
    await consent(comm)
    await send(comm, type="offer", sdp=AUDIO_ONLY_OFFER)
    await expect_error(comm, "no_video")
    await comm.disconnect()


async def test_offer_needs_consent(kiosks):
    comm, _ = await connect()
    await send(comm, type="offer", sdp=VIDEO_OFFER)
    await expect_error(comm, "consent_required")
    await comm.disconnect()


async def test_continue_without_records_a_visit_and_allows_no_offer(kiosks):
    comm, _ = await connect()
    session_id = await consent(comm, given=False)
    row = await session_row(session_id)
    assert row.consent_given is False and row.consent_language == "zh-hans"
    await send(comm, type="offer", sdp=VIDEO_OFFER)
    await expect_error(comm, "consent_required")
    await send(comm, type="consent", given=True, language="en")
    await expect_error(comm, "consent_already_given")
    await send(comm, type="bye")
    assert (await expect(comm, "state"))["state"] == "stopped"
    assert (await expect(comm, "ended"))["reason"] == "bye"
    assert (await session_row(session_id)).end_reason == "bye"
    await comm.disconnect()


async def test_candidate_before_offer(kiosks):
    comm, _ = await connect()
    await consent(comm)
    await send(comm, type="candidate", candidate=None)
    await expect_error(comm, "no_offer")
    await comm.disconnect()


async def test_a_whole_call(kiosks):
    comm, _ = await connect()
    session_id = await consent(comm)
    row = await session_row(session_id)
    assert row.consent_given and row.kiosk_id == kiosks[0].pk and row.ended_at is None
    await send(comm, type="offer", sdp=VIDEO_OFFER)
    # A candidate trickled before the answer waits, then reaches the worker in order.
    early = {"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0"}
    await send(comm, type="candidate", candidate=early)
    worker = Worker()
    offer = await worker.take_offer()
    assert offer["type"] == "media.offer"
    assert offer["kiosk"] == "lobby" and offer["engine"] == "label"
    assert offer["sdp"] == VIDEO_OFFER and offer["sdp_type"] == "offer"
    assert offer["ice_servers"] == [{"urls": "stun:stun.example.test:3478"}]
    assert offer["deadline"] > 0 and offer["reply_channel"]
    assert (await expect(comm, "state"))["state"] == "connecting"
    await worker.answer()
    assert (await expect(comm, "answer"))["sdp"].startswith("v=0")
    assert (await session_row(session_id)).worker == "worker-test-1"
    forwarded = await worker.control_message()
    assert forwarded["type"] == "session.candidate"
    assert forwarded["candidate"]["candidate"] == early["candidate"]
    await send(comm, type="candidate", candidate=None)
    assert (await worker.control_message())["candidate"] is None

    await worker.reply("media.state", state="live", detail="")
    assert (await expect(comm, "state"))["state"] == "live"
    await worker.reply("media.stats", stats={"fps": 30, "process_ms": 4.2})
    assert (await expect(comm, "stats"))["stats"] == {"fps": 30, "process_ms": 4.2}
    await send(comm, type="stats", loop_ms=41.5, fps=29)
    client_stats = await worker.control_message()
    assert client_stats["type"] == "session.client_stats"
    assert client_stats["stats"] == {"loop_ms": 41.5, "fps": 29.0}

    await send(comm, type="bye")
    bye = await worker.control_message()
    assert bye == {"type": "session.bye", "session_id": session_id, "reason": "bye"}
    assert (await expect(comm, "state"))["state"] == "stopped"
    assert (await expect(comm, "ended"))["reason"] == "bye"
    row = await session_row(session_id)
    assert row.end_reason == "bye" and row.ended_at is not None
    await comm.disconnect()


async def test_second_offer_is_refused_and_the_first_call_keeps_running(kiosks):
    comm, _ = await connect()
    session_id, worker = await live_call(comm)
    await send(comm, type="offer", sdp=VIDEO_OFFER)
    await expect_error(comm, "duplicate_offer")
    # Nothing reached the worker, the record is still open, and the call still works.
    await send(comm, type="stats", loop_ms=30)
    assert (await worker.control_message())["type"] == "session.client_stats"
    assert (await session_row(session_id)).ended_at is None
    await worker.reply("media.state", state="live")
    assert (await expect(comm, "state"))["state"] == "live"
    await comm.disconnect()


async def test_client_vanishing_mid_call_tears_the_worker_session_down(kiosks):
    comm, _ = await connect()
    session_id, worker = await live_call(comm)
    await comm.disconnect()
    bye = await worker.control_message()
    assert bye["type"] == "session.bye" and bye["reason"] == "disconnect"
    row = await session_row(session_id)
    assert row.end_reason == "disconnect" and row.ended_at is not None
    # The server keeps serving other kiosks.
    other, hello = await connect("counter-2")
    assert hello["kiosk"]["slug"] == "counter-2"
    assert await consent(other)
    await other.disconnect()


async def test_busy_when_no_worker_answers(kiosks, monkeypatch):
    monkeypatch.setattr(protocol, "OFFER_TIMEOUT_S", 0.5)
    comm, _ = await connect()
    session_id = await consent(comm)
    await send(comm, type="offer", sdp=VIDEO_OFFER)
    assert (await expect(comm, "state"))["state"] == "connecting"
    state = await expect(comm, "state")
    assert state["state"] == "busy" and state["message"]
    assert (await expect(comm, "ended"))["reason"] == "busy"
    assert (await session_row(session_id)).end_reason == "busy"
    # A worker that answers too late is told to drop the call.
    worker = Worker()
    await worker.take_offer()
    await worker.answer()
    assert (await worker.control_message())["type"] == "session.bye"
    await comm.disconnect()


@pytest.mark.parametrize(
    ("code", "state", "reason", "error_code"),
    [
        ("busy", "busy", "busy", None),
        ("disabled", "stopped", "disabled", None),
        ("engine_unavailable", "failed", "error", "engine_unavailable"),
        ("something_new", "failed", "error", "refused"),
    ],
)
async def test_worker_refusals(kiosks, code, state, reason, error_code):
    comm, _ = await connect()
    session_id = await consent(comm)
    await send(comm, type="offer", sdp=VIDEO_OFFER)
    worker = Worker()
    await worker.take_offer()
    await expect(comm, "state")  # connecting
    await worker.reply("media.refused", code=code, message=f"refused: {code}")
    if error_code:
        await expect_error(comm, error_code)
    assert (await expect(comm, "state"))["state"] == state
    assert (await expect(comm, "ended"))["reason"] == reason
    assert (await session_row(session_id)).end_reason == reason
    await comm.disconnect()


async def test_fusion_switched_off_refuses_the_offer(kiosks):
    await database_sync_to_async(FusionSwitch.objects.filter(pk=1).update)(
        enabled=False, reason="test"
    )
    comm, _ = await connect()
    session_id = await consent(comm)
    await send(comm, type="offer", sdp=VIDEO_OFFER)
    state = await expect(comm, "state")
    assert state["state"] == "stopped" and state["reason"] == "disabled"
    assert (await expect(comm, "ended"))["reason"] == "disabled"
    assert (await session_row(session_id)).end_reason == "disabled"
    layer = get_channel_layer()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(protocol.OFFERS_CHANNEL), 0.5)
    await comm.disconnect()


async def test_fusion_switch_unreadable_counts_as_off(kiosks, monkeypatch):
    from kiosk import selectors

    def broken(slug=None):
        raise RuntimeError("database unreachable")

    monkeypatch.setattr(selectors, "fusion_allowed", broken)
    comm, _ = await connect()
    await consent(comm)
    await send(comm, type="offer", sdp=VIDEO_OFFER)
    assert (await expect(comm, "state"))["reason"] == "disabled"
    await comm.disconnect()


async def test_worker_lost(kiosks, monkeypatch):
    monkeypatch.setattr(protocol, "WORKER_LOST_AFTER_S", 1.0)
    comm, _ = await connect()
    session_id, worker = await live_call(comm)
    await expect_error(comm, "worker_lost")
    assert (await expect(comm, "state"))["state"] == "failed"
    assert (await expect(comm, "ended"))["reason"] == "error"
    row = await session_row(session_id)
    assert row.end_reason == "error" and "silent" in row.end_detail
    assert (await worker.control_message())["type"] == "session.bye"
    await comm.disconnect()


async def test_worker_ends_the_session(kiosks):
    comm, _ = await connect()
    session_id, worker = await live_call(comm)
    await worker.reply("media.ended", reason="ice_failed", detail="ICE failed")
    assert (await expect(comm, "state"))["state"] == "failed"
    ended = await expect(comm, "ended")
    assert ended == {"type": "ended", "reason": "ice_failed", "detail": "ICE failed"}
    assert (await session_row(session_id)).end_reason == "ice_failed"
    await comm.disconnect()


async def test_messages_for_another_session_are_ignored(kiosks):
    comm, _ = await connect()
    _, worker = await live_call(comm)
    await worker.layer.send(
        worker.offer["reply_channel"],
        {"type": "media.state", "session_id": str(uuid.uuid4()), "state": "stopped"},
    )
    await worker.reply("media.state", state="live")
    assert (await expect(comm, "state"))["state"] == "live"
    await comm.disconnect()


async def test_too_many_bad_messages_close_the_socket(kiosks):
    comm, _ = await connect()
    for _ in range(20):
        await comm.send_to(text_data="nope")
        await expect_error(comm, "bad_json")
    await expect_error(comm, "too_many_errors")
    assert await comm.receive_output(timeout=WAIT) == {"type": "websocket.close", "code": 4400}
    await comm.disconnect()


async def test_page_stats_are_rate_limited(kiosks):
    comm, _ = await connect()
    _, worker = await live_call(comm)
    for value in (1, 2, 3, 4, 5):
        await send(comm, type="stats", loop_ms=value)
    assert (await worker.control_message())["stats"]["loop_ms"] == 1
    await asyncio.sleep(0.6)
    await send(comm, type="stats", loop_ms=99)
    # The flood in between was dropped, not queued.
    assert (await worker.control_message())["stats"]["loop_ms"] == 99
    await comm.disconnect()


async def test_candidates_are_limited_per_call(kiosks):
    comm, _ = await connect()
    _, worker = await live_call(comm)
    line = {"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0"}
    for _ in range(signaling.MAX_CANDIDATES):
        await send(comm, type="candidate", candidate=line)
    await send(comm, type="candidate", candidate=line)
    error = await expect_error(comm, "too_many_candidates")
    assert str(signaling.MAX_CANDIDATES) in error["message"]
    for _ in range(signaling.MAX_CANDIDATES):
        assert (await worker.control_message())["type"] == "session.candidate"
    await comm.disconnect()


async def test_a_malformed_answer_ends_the_visit_cleanly(kiosks):
    comm, _ = await connect()
    session_id = await consent(comm)
    await send(comm, type="offer", sdp=VIDEO_OFFER)
    worker = Worker()
    await worker.take_offer()
    await expect(comm, "state")  # connecting
    await worker.reply("media.answer", sdp=None)
    await expect_error(comm, "refused")
    assert (await expect(comm, "state"))["state"] == "failed"
    assert (await expect(comm, "ended"))["reason"] == "error"
    assert (await session_row(session_id)).end_reason == "error"
    await comm.disconnect()


async def test_an_unreadable_kiosk_table_is_a_clear_error(kiosks, monkeypatch):
    from kiosk import consumers

    def broken(slug, token, address):
        raise RuntimeError("database unreachable")

    monkeypatch.setattr(consumers.services, "admit_kiosk_socket", broken)
    comm = WebsocketCommunicator(APP, "/ws/kiosk/lobby/")
    connected, _ = await comm.connect(timeout=WAIT)
    assert connected
    await expect_error(comm, "internal")
    assert await comm.receive_output(timeout=WAIT) == {"type": "websocket.close", "code": 1011}
    await comm.disconnect()


@pytest.mark.parametrize("leave", ["bye", "vanish"])
async def test_leaving_before_the_answer_ends_the_call_on_any_worker(kiosks, leave):
    listener = Worker()
    group_channel = await listener.layer.new_channel()
    await listener.layer.group_add(protocol.CONTROL_GROUP, group_channel)
    comm, _ = await connect()
    session_id = await consent(comm)
    await send(comm, type="offer", sdp=VIDEO_OFFER)
    await expect(comm, "state")  # connecting; no worker has answered
    if leave == "bye":
        await send(comm, type="bye")
        assert (await expect(comm, "state"))["state"] == "stopped"
        assert (await expect(comm, "ended"))["reason"] == "bye"
    else:
        await comm.disconnect()
    reason = "bye" if leave == "bye" else "disconnect"
    end = await asyncio.wait_for(listener.layer.receive(group_channel), WAIT)
    assert end["type"] == "sessions.end"
    assert (end["session_id"], end["reason"]) == (session_id, reason)
    assert (await session_row(session_id)).end_reason == reason
    if leave == "bye":
        await comm.disconnect()
