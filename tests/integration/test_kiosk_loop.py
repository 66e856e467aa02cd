"""The kiosk loop through real processes: daphne with the Redis channel layer, two
``manage.py media_engine`` workers (one session each), PostgreSQL, and real aiortc kiosks
that speak docs/signaling.md over a WebSocket and send frames stamped with their number."""

import asyncio

import aioice.ice
import pytest
import redis
from channels.db import database_sync_to_async
from django.db import connections

from consent.models import KioskSession
from kiosk.models import Engine, Kiosk
from media_engine import ice
from tests.conftest import child_env
from tests.support.kioskclient import CallRefused, SignalingClient
from tests.support.loopclient import KioskPeer
from tests.support.servers import (
    running,
    start_daphne,
    start_media_worker,
    wait_for_other_connections_to_close,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

WAIT_S = 30.0
KIOSKS = ("hall-1", "hall-2", "hall-3")


@pytest.fixture
def service(transactional_db, settings, redis_url, monkeypatch):
    """daphne + two media workers (one session each) on Redis and the test database."""
    # This test's own database calls run in threads: close them after each call so that the
    # test database can be dropped at the end.
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    # No stale offers from an earlier run: drop the channel layer's keys (prefix "asgi"),
    # nothing else (a Celery broker may share this Redis db).
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter("asgi*"):
        client.delete(key)
    for slug in KIOSKS:
        Kiosk.objects.create(slug=slug, name=slug.title(), engine=Engine.LABEL)
    env = child_env(
        settings.DATABASES["default"],
        REDIS_URL=redis_url,
        MEDIA_ENGINE_IN_PROCESS="0",
        MEDIA_ENGINE_LOOPBACK_CANDIDATES="1",
        MEDIA_ENGINE_MAX_SESSIONS="1",
    )
    # This process's aiortc kiosks must offer 127.0.0.1 too (DESIGN.md "ICE on loopback").
    monkeypatch.setattr(aioice.ice, "get_host_addresses", aioice.ice.get_host_addresses)
    ice.offer_loopback_candidates()
    daphne, base = start_daphne(env)
    with running([daphne]) as processes:
        processes.append(start_media_worker(env, "worker-a"))
        processes.append(start_media_worker(env, "worker-b"))
        yield base
    wait_for_other_connections_to_close(settings.DATABASES["default"])


async def session_row(session_id: str) -> KioskSession:
    return await database_sync_to_async(KioskSession.objects.get)(pk=session_id)


async def wait_for(condition, what: str, wait_s: float = WAIT_S) -> None:
    deadline = asyncio.get_running_loop().time() + wait_s
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def stamped_frames_arrive(peer: KioskPeer, count: int) -> None:
    await asyncio.wait_for(peer.track_arrived.wait(), WAIT_S)
    start = peer.returned.stamped

    async def enough() -> bool:
        return peer.returned.stamped - start >= count

    await wait_for(enough, f"{count} stamped frames back")


async def ended_with(session_id: str, reason: str) -> None:
    async def ended() -> bool:
        row = await session_row(session_id)
        return row.ended_at is not None

    await wait_for(ended, f"session {session_id} to end")
    row = await session_row(session_id)
    assert row.end_reason == reason, (row.end_reason, row.end_detail)


async def start_call(client: SignalingClient) -> KioskPeer:
    if not client.session_id:
        await client.consent()
    peer = KioskPeer()
    await peer.accept(await client.offer(await peer.offer()))
    return peer


async def test_the_kiosk_loop_through_two_workers(service):
    peers: list[KioskPeer] = []
    try:
        async with (
            SignalingClient.connect(service, "hall-1") as first,
            SignalingClient.connect(service, "hall-2") as second,
        ):
            # One kiosk: stamped camera frames come back with their numbers and the label.
            assert first.hello["kiosk"]["slug"] == "hall-1"
            peers.append(one := await start_call(first))
            await stamped_frames_arrive(one, 45)
            returned = one.returned
            # Every stamped full-size frame carries the label (under load the adaptive
            # resolution may send some frames smaller; loopclient checks the 640x480 ones).
            assert returned.labelled > 0, vars(returned)
            assert returned.unlabelled == 0, vars(returned)
            assert returned.last_number is not None
            assert 0 <= one.camera.count - returned.last_number < 30  # recent frames, in order
            assert returned.round_trips_ms

            # A second offer on the same socket is refused; the first call keeps running.
            await first.send({"type": "offer", "sdp": await KioskPeer().offer()})
            error = await first.expect("error", skip=("stats", "state"))
            assert error["code"] == "duplicate_offer"
            await stamped_frames_arrive(one, 15)

            # A second kiosk at the same time is served by the other worker.
            peers.append(two := await start_call(second))
            await stamped_frames_arrive(two, 30)
            rows = [await session_row(c.session_id) for c in (first, second)]
            assert {row.worker.split(":")[0] for row in rows} == {"worker-a", "worker-b"}

            # Both workers are full: a third kiosk is told "busy" after the offer timeout.
            async with SignalingClient.connect(service, "hall-3") as third:
                await third.consent()
                with pytest.raises(CallRefused) as refused:
                    await third.offer(await KioskPeer().offer())
                assert refused.value.message["type"] == "ended"
                assert refused.value.message["reason"] == "busy"
                assert any(m["type"] == "state" and m["state"] == "busy" for m in third.seen)
                await ended_with(third.session_id, "busy")

            # The first kiosk vanishes mid-call (no bye, no close handshake).
            first.socket.transport.abort()
            await ended_with(first.session_id, "disconnect")

            # Its worker session was torn down: that worker takes the next kiosk at once.
            async with SignalingClient.connect(service, "hall-3") as fourth:
                peers.append(four := await start_call(fourth))
                await stamped_frames_arrive(four, 20)
                freed = (await session_row(first.session_id)).worker
                assert (await session_row(fourth.session_id)).worker == freed
                await fourth.bye()
                await fourth.expect("ended", skip=("stats", "state"))
                await ended_with(fourth.session_id, "bye")

            # The second kiosk was never disturbed, and ends with Stop.
            await stamped_frames_arrive(two, 15)
            await second.bye()
            ended = await second.expect("ended", skip=("stats", "state"))
            assert ended["reason"] == "bye"
            await ended_with(second.session_id, "bye")
    finally:
        for peer in peers:
            await peer.close()


async def test_bad_input_against_the_running_service(service):
    """Bad frames get clear errors from the real server, which keeps serving."""
    async with SignalingClient.connect(service, "no-such-kiosk", token=None) as lost:
        assert lost.seen[0]["type"] == "error" and lost.seen[0]["code"] == "unknown_kiosk"
        await asyncio.wait_for(lost.socket.wait_closed(), WAIT_S)
        assert lost.socket.close_code == 4404
    async with SignalingClient.connect(service, "hall-1") as client:
        await client.send("{not json")
        assert (await client.expect("error"))["code"] == "bad_json"
        await client.send({"type": "dance"})
        assert (await client.expect("error"))["code"] == "unknown_type"
        await client.consent()
        await client.send({"type": "offer", "sdp": "v=0\r\na=x-pad:" + "p" * 70_000})
        assert (await client.expect("error"))["code"] == "sdp_too_large"
        audio_only = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n"
        await client.send({"type": "offer", "sdp": audio_only})
        assert (await client.expect("error"))["code"] == "no_video"
        # After all that, the same socket still makes a call.
        peer = await start_call(client)
        try:
            await stamped_frames_arrive(peer, 10)
        finally:
            await peer.close()
