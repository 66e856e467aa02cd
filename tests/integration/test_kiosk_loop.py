"""The kiosk loop through real processes: daphne with the Redis channel layer, two
``manage.py media_engine`` workers (one session each), PostgreSQL, and real aiortc kiosks
that speak docs/signaling.md over a WebSocket and send frames stamped with their number."""

import asyncio

import pytest

from tests.support.kiosk_service import (
    drop_channel_layer_keys,
    kiosk_service,
    prepare_kiosks,
    session_row,
    stamped_frames_back,
    start_call,
)
from tests.support.kioskclient import CallRefused, SignalingClient
from tests.support.loopclient import KioskPeer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

WAIT_S = 30.0
KIOSKS = ("hall-1", "hall-2", "hall-3")


@pytest.fixture
def service(transactional_db, settings, redis_url, monkeypatch):
    """daphne + two media workers (one session each) on Redis and the test database."""
    drop_channel_layer_keys(redis_url)
    prepare_kiosks(monkeypatch, KIOSKS)
    # The loop, not admission, is under test here (test_worker_capacity.py is admission's):
    # one session per worker still sends the second kiosk to the other worker, but a busy
    # suite's CPU must not make the measured load refuse it.
    with kiosk_service(
        settings.DATABASES["default"], redis_url, MEDIA_ENGINE_MAX_LOAD="16"
    ) as running:
        yield running.base


async def wait_for(condition, what: str, wait_s: float = WAIT_S) -> None:
    deadline = asyncio.get_running_loop().time() + wait_s
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def ended_with(session_id: str, reason: str) -> None:
    async def ended() -> bool:
        row = await session_row(session_id)
        return row.ended_at is not None

    await wait_for(ended, f"session {session_id} to end")
    row = await session_row(session_id)
    assert row.end_reason == reason, (row.end_reason, row.end_detail)


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
            await stamped_frames_back(one, 45)
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
            await stamped_frames_back(one, 15)

            # A second kiosk at the same time is served by the other worker.
            peers.append(two := await start_call(second))
            await stamped_frames_back(two, 30)
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
                await stamped_frames_back(four, 20)
                freed = (await session_row(first.session_id)).worker
                assert (await session_row(fourth.session_id)).worker == freed
                await fourth.bye()
                await fourth.expect("ended", skip=("stats", "state"))
                await ended_with(fourth.session_id, "bye")

            # The second kiosk was never disturbed, and ends with Stop.
            await stamped_frames_back(two, 15)
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
            await stamped_frames_back(peer, 10)
        finally:
            await peer.close()
