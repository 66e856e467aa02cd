"""Failover through real processes: daphne, two media workers, PostgreSQL, Redis, and real
aiortc kiosks speaking docs/signaling.md.

- kill -9 the worker serving a call: the kiosk is told ``worker_lost`` within 2 s, gets a
  ``reoffer`` with a new session id (same consent while it is valid) and is live again on
  the other worker within 5 s; the audit trail records the abnormal end;
- a full cluster answers "busy" at once (from the heartbeats), not after the offer timeout;
- restarting daphne or Redis wedges nothing: the kiosk reconnects and calls again.
"""

import asyncio
import time

import pytest
from channels.db import database_sync_to_async
from websockets.exceptions import ConnectionClosed

from consent.audit_models import AuditEvent, AuditOutbox
from consent.models import ConsentGrant
from kiosk.models import KioskCall
from media_engine import protocol
from tests.conftest import child_env
from tests.support.enrolment import enrol_with_manage
from tests.support.kiosk_service import (
    kiosk_service,
    offer_loopback,
    prepare_kiosks,
    session_row,
    stamped_frames_back,
    start_call,
)
from tests.support.kioskclient import ENROL, CallRefused, SignalingClient, follow_reoffer
from tests.support.loopclient import KioskPeer
from tests.support.redis_server import private_redis
from tests.support.servers import (
    running,
    start_daphne,
    start_media_worker,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

WAIT_S = 30.0
KIOSKS = ("hall-1", "hall-2", "hall-3")


@pytest.fixture
def private_service(transactional_db, settings, monkeypatch):
    """daphne + two media workers (one session each) on a private Redis and the test db."""
    prepare_kiosks(monkeypatch, KIOSKS)
    with (
        private_redis() as redis_server,
        kiosk_service(
            settings.DATABASES["default"], redis_server.url, AUDIT_MEDIA_EVENTS="0"
        ) as service,
    ):
        service.redis = redis_server
        yield service
        for process in service.processes:  # shown by pytest when the test failed
            print(f"----- {process.name}\n{process.output()[-5000:]}")


def actions_for(session_ids: list[str]) -> set[tuple[str, str]]:
    """(action, session id) of every audit event of these sessions, relayed or not yet."""
    out = set()
    for model in (AuditEvent, AuditOutbox):
        for action, sid in model.objects.filter(session_id__in=session_ids).values_list(
            "action", "session_id"
        ):
            out.add((action, str(sid)))
    return out


async def test_kill_9_of_the_serving_worker_moves_the_call_to_the_other(private_service):
    peers: list[KioskPeer] = []
    try:
        async with SignalingClient.connect(private_service.base, "hall-1") as kiosk:
            peers.append(first := await start_call(kiosk))
            await stamped_frames_back(first, 20)
            old_id = kiosk.session_id
            old_row = await session_row(old_id)
            victim = private_service.worker(old_row.worker.split(":")[0])

            victim.popen.kill()  # kill -9: nothing is ended or said
            killed_at = time.monotonic()
            lost = await kiosk.expect("error", skip=("stats", "state"), wait_s=10)
            noticed_s = time.monotonic() - killed_at
            assert lost["code"] == "worker_lost"
            peers.append(
                second := (await follow_reoffer(kiosk, KioskPeer))[0]
            )  # same socket, new peer connection
            await stamped_frames_back(second, 1)
            live_s = time.monotonic() - killed_at
            print(f"failover: noticed in {noticed_s:.2f} s, live again in {live_s:.2f} s")
            assert noticed_s < 2.0, noticed_s
            assert live_s < 5.0, live_s
            await stamped_frames_back(second, 30)
            assert second.returned.unlabelled == 0 and second.returned.labelled > 0

            new_id = kiosk.session_id
            assert new_id != old_id
            # the kiosk's one-call claim went with the call to its new session row
            claim = await database_sync_to_async(
                lambda: KioskCall.objects.get(kiosk__slug="hall-1").session_id
            )()
            assert claim == new_id
            old_row, new_row = await session_row(old_id), await session_row(new_id)
            assert old_row.end_reason == "error" and "worker lost" in old_row.end_detail
            assert new_row.ended_at is None and new_row.worker.split(":")[0] != victim.name
            grants = await database_sync_to_async(
                lambda: {
                    str(g.session_id): g
                    for g in ConsentGrant.objects.filter(session_id__in=[old_id, new_id])
                }
            )()
            # the same consent carried over: same texts, time given and expiry
            old_grant, new_grant = grants[old_id], grants[new_id]
            assert old_grant.withdrawn_at is not None and new_grant.withdrawn_at is None
            assert new_grant.given_at == old_grant.given_at
            assert new_grant.expires_at == old_grant.expires_at
            assert new_grant.text_versions == old_grant.text_versions
            actions = await database_sync_to_async(actions_for)([old_id, new_id])
            assert ("session.ended", old_id) in actions
            assert ("session.failed_over", new_id) in actions

            await kiosk.bye()
            await kiosk.expect("ended", skip=("stats", "state"))
    finally:
        for peer in peers:
            await peer.close()


async def test_a_full_cluster_answers_busy_at_once(private_service):
    peers: list[KioskPeer] = []
    try:
        async with (
            SignalingClient.connect(private_service.base, "hall-1") as one,
            SignalingClient.connect(private_service.base, "hall-2") as two,
            SignalingClient.connect(private_service.base, "hall-3") as three,
        ):
            peers.append(await start_call(one))
            peers.append(await start_call(two))
            await stamped_frames_back(peers[0], 10)
            await stamped_frames_back(peers[1], 10)
            await asyncio.sleep(1.0)  # a heartbeat with the sessions measured
            await three.consent()
            asked = time.monotonic()
            with pytest.raises(CallRefused) as refused:
                await three.offer(await KioskPeer().offer())
            took = time.monotonic() - asked
            assert refused.value.message["reason"] == "busy"
            assert took < protocol.OFFER_TIMEOUT_S / 3, took  # not the offer timeout
            row = await session_row(three.session_id)
            assert row.end_reason == "busy"
    finally:
        for peer in peers:
            await peer.close()


async def new_visit_call(
    base: str, slug: str, wait_s: float = WAIT_S, token: str | None = ENROL
) -> None:
    """What the kiosk page does after its socket closed: connect again (retrying while the
    server comes back), give consent, call, see frames, stop."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            async with SignalingClient.connect(base, slug, token) as client:
                peer = await start_call(client)
                try:
                    await stamped_frames_back(peer, 20)
                    await client.bye()
                    await client.expect("ended", skip=("stats", "state"))
                finally:
                    await peer.close()
                return
        except (OSError, ConnectionClosed, CallRefused) as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"the kiosk did not come back: {exc!r}") from exc
            await asyncio.sleep(0.5)


async def test_restarting_redis_and_daphne_wedges_nothing(private_service):
    async with SignalingClient.connect(private_service.base, "hall-1") as kiosk:
        peer = await start_call(kiosk)
        try:
            await stamped_frames_back(peer, 10)
            await asyncio.to_thread(private_service.redis.restart, 1.0)
            # media flows peer to peer: the call itself goes on while Redis is away
            await stamped_frames_back(peer, 30)
        finally:
            # daphne may close the socket (its channel-layer receive failed): the page then
            # ends its call and opens a new visit, as below
            await peer.close()
    # a new visit after the Redis restart: daphne and the workers are back on Redis
    await new_visit_call(private_service.base, "hall-2")

    await asyncio.to_thread(private_service.restart_daphne)
    await new_visit_call(private_service.base, "hall-3")
    for worker in private_service.processes[1:]:
        assert worker.alive(), worker.output()[-3000:]


async def test_restarting_postgresql_wedges_nothing(transactional_db, settings, monkeypatch):
    """daphne and a worker on a private PostgreSQL that restarts under a live call: the
    switch reads fail closed meanwhile (paused picture), the call is fused again after it,
    and a new visit (consent rows) works with the reconnected database."""
    import subprocess
    import sys

    from tests.support.postgres_server import private_postgres

    offer_loopback(monkeypatch)
    with private_postgres() as postgres, private_redis() as redis_server:
        env = child_env(
            settings.DATABASES["default"],
            DATABASE_URL=postgres.url,
            REDIS_URL=redis_server.url,
            MEDIA_ENGINE_IN_PROCESS="0",
            MEDIA_ENGINE_LOOPBACK_CANDIDATES="1",
            AUDIT_MEDIA_EVENTS="0",
            # Restarts, not rate limits, are under test: the kiosks reconnect and re-consent
            # more often than a visitor would (kiosk/limits.py).
            KIOSK_RATE_LIMITS='{"consent_kiosk": [1000, 60], "consent_address": [1000, 60]}',
        )
        for command in (
            ["manage.py", "migrate", "--noinput", "-v", "0"],
            ["manage.py", "shell", "-c", "from kiosk.models import Kiosk; "
             "[Kiosk.objects.create(slug=s, name=s, engine='label') for s in ('pg-1', 'pg-2')]"],
        ):  # fmt: skip
            await asyncio.to_thread(
                subprocess.run, [sys.executable, *command], env=env, check=True, timeout=300
            )
        # the kiosks' devices are enrolled in the private database, not the test's
        tokens = {
            slug: await asyncio.to_thread(enrol_with_manage, env, slug) for slug in ("pg-1", "pg-2")
        }
        daphne, base = start_daphne(env)
        with running([daphne]) as processes:
            processes.append(start_media_worker(env, "worker-pg"))
            async with SignalingClient.connect(base, "pg-1", tokens["pg-1"]) as kiosk:
                peer = await start_call(kiosk)
                try:
                    await stamped_frames_back(peer, 10)
                    await asyncio.to_thread(postgres.restart, 2.0)
                    # fused (stamped) frames come back after the restart
                    await stamped_frames_back(peer, 30, wait_s=60)
                finally:
                    await peer.close()
            await new_visit_call(base, "pg-2", wait_s=60, token=tokens["pg-2"])
            assert processes[1].alive(), processes[1].output()[-3000:]
