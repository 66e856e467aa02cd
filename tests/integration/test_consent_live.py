"""Withdrawal, expiry and identity revocation stop a live session's processing, through
real processes: daphne (the signaling consumer) and a ``manage.py media_engine`` worker on
the Redis channel layer, a Celery worker with beat on a broker of its own, PostgreSQL, and
real aiortc kiosks sending frames stamped with their number. Each leaves its audit events,
the media engine's own ``session.ended`` included (spool -> Celery -> chain).

How fast processing stops is measured here (printed as ``consent-stop {...}``): the time
from the withdrawal leaving the kiosk to the last processed frame coming back, and how many
camera frames taken after the withdrawal were still processed.
"""

import asyncio
import datetime as dt
import json
import time

import aioice.ice
import cv2
import numpy as np
import pytest
import redis
from channels.db import database_sync_to_async
from django.db import connections
from django.utils import timezone

from consent import chain, services
from consent.models import AuditEvent, ConsentGrant, Identity, KioskSession
from kiosk.models import Engine, Kiosk
from kiosk.settings import redis_channel_layer
from media_engine import ice
from tests.conftest import child_env
from tests.integration.audit_processes import CeleryWorker, PrivateRedis
from tests.support.kioskclient import SignalingClient
from tests.support.loopclient import KioskPeer
from tests.support.servers import (
    running,
    start_daphne,
    start_media_worker,
    wait_for_other_connections_to_close,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

WAIT_S = 40.0
FPS = 30.0


@pytest.fixture
def service(transactional_db, settings, redis_url, monkeypatch, tmp_path):
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter("asgi*"):
        client.delete(key)
    # This process revokes identity consents: its sessions.end must reach the real workers.
    settings.CHANNEL_LAYERS = {"default": redis_channel_layer(redis_url)}
    services.ensure_shipped_texts()
    broker = PrivateRedis(tmp_path / "broker")
    broker.start()
    env = child_env(
        settings.DATABASES["default"],
        REDIS_URL=redis_url,
        CELERY_BROKER_URL=broker.url,
        MEDIA_ENGINE_IN_PROCESS="0",
        MEDIA_ENGINE_LOOPBACK_CANDIDATES="1",
        MEDIA_ENGINE_MAX_SESSIONS="3",
        AUDIT_MEDIA_EVENTS="1",
        KIOSK_VAR_DIR=str(tmp_path / "var"),
    )
    monkeypatch.setattr(aioice.ice, "get_host_addresses", aioice.ice.get_host_addresses)
    ice.offer_loopback_candidates()
    celery = CeleryWorker(
        settings.DATABASES["default"],
        broker.url,
        tmp_path / "celery.log",
        beat_dir=tmp_path,
        concurrency=1,
        CELERY_BROKER_URL=broker.url,
        CONSENT_EXPIRY_CHECK_S="1",
        KIOSK_VAR_DIR=str(tmp_path / "var"),
    )
    celery.env["REDIS_URL"] = redis_url  # the channel layer: sessions.end reaches workers
    daphne, base = start_daphne(env)
    celery.start()
    try:
        with running([daphne]) as processes:
            processes.append(start_media_worker(env, "worker-consent"))
            yield base
    finally:
        celery.stop()
        broker.stop()
        print("--- celery\n" + celery.log_tail(3000))
    wait_for_other_connections_to_close(settings.DATABASES["default"])


@database_sync_to_async
def make_kiosk(slug: str, identity: Identity | None = None) -> Kiosk:
    return Kiosk.objects.create(slug=slug, name=slug, engine=Engine.LABEL, identity=identity)


async def wait_for(condition, what: str, wait_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + wait_s
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def live_call(client: SignalingClient, peer: KioskPeer) -> str:
    session_id = await client.consent(language="en")
    await peer.accept(await client.offer(await peer.offer()))
    await asyncio.wait_for(peer.track_arrived.wait(), WAIT_S)
    start = peer.returned.stamped

    async def flowing() -> bool:
        return peer.returned.stamped - start >= 20

    await wait_for(flowing, "fused frames")
    return session_id


async def ended_reason(client: SignalingClient) -> str:
    return (await client.expect("ended", skip=("stats", "state"), wait_s=WAIT_S))["reason"]


async def assert_processing_stopped(peer: KioskPeer) -> None:
    """No processed frame comes back any more (watched for a second)."""
    await asyncio.sleep(0.5)
    before = peer.returned.stamped
    await asyncio.sleep(1.0)
    assert peer.returned.stamped == before


@database_sync_to_async
def actions(session_id: str) -> list[str]:
    return list(
        AuditEvent.objects.filter(session_id=session_id)
        .order_by("seq")
        .values_list("action", flat=True)
    )


async def wait_for_actions(session_id: str, wanted: set[str]) -> list[str]:
    async def present() -> bool:
        return wanted <= set(await actions(session_id))

    await wait_for(present, f"audit events {sorted(wanted)}", wait_s=60)
    return await actions(session_id)


@database_sync_to_async
def media_end_event(session_id: str) -> dict:
    event = AuditEvent.objects.get(
        session_id=session_id, action="session.ended", actor__startswith="media-engine@"
    )
    return event.details


def stop_figures(peer: KioskPeer, withdrawn_at: float, stopped_at: float) -> dict:
    camera = peer.camera
    last = peer.returned.last_number
    after = [n for n, sent in camera.sent_at.items() if sent > withdrawn_at]
    last_sent = camera.sent_at.get(last) if last is not None else None
    return {
        "frame_interval_ms": round(1000 / FPS, 1),
        "withdraw_to_confirmed_ms": round((stopped_at - withdrawn_at) * 1000, 1),
        "last_processed_frame_taken_after_withdraw_ms": round((last_sent - withdrawn_at) * 1000, 1)
        if last_sent
        else None,
        "frames_taken_after_withdraw_and_processed": sum(
            1 for n in after if last is not None and n <= last
        ),
    }


async def test_withdraw_button_stops_processing_at_once(service):
    await make_kiosk("consent-w")
    async with SignalingClient.connect(service, "consent-w") as client:
        peer = KioskPeer(fps=FPS)
        try:
            session_id = await live_call(client, peer)
            withdrawn_at = time.monotonic()
            await client.send({"type": "withdraw"})
            assert await ended_reason(client) == "withdrawn"
            stopped_at = time.monotonic()
            await assert_processing_stopped(peer)
            figures = stop_figures(peer, withdrawn_at, stopped_at)
            print("consent-stop " + json.dumps(figures))
        finally:
            await peer.close()
    row = await database_sync_to_async(KioskSession.objects.get)(pk=session_id)
    assert row.end_reason == "withdrawn"
    grant = await database_sync_to_async(ConsentGrant.objects.get)(session_id=session_id)
    assert grant.withdrawal_method == "withdraw_button"
    found = await wait_for_actions(
        session_id, {"consent.granted", "consent.withdrawn", "session.started", "session.ended"}
    )
    assert found.index("consent.granted") < found.index("consent.withdrawn")
    assert (await media_end_event(session_id))["reason"] == "withdrawn"


async def test_expiry_ends_the_live_session(service):
    await make_kiosk("consent-e")
    async with SignalingClient.connect(service, "consent-e") as client:
        peer = KioskPeer(fps=FPS)
        try:
            session_id = await live_call(client, peer)
            # The consent's time runs out (as if CONSENT_GRANT_TTL_S had passed): beat's
            # expiry job ends the session through every media worker.
            await database_sync_to_async(ConsentGrant.objects.filter(session_id=session_id).update)(
                expires_at=timezone.now()
            )
            assert await ended_reason(client) == "expired"
            await assert_processing_stopped(peer)
        finally:
            await peer.close()
    row = await database_sync_to_async(KioskSession.objects.get)(pk=session_id)
    assert row.end_reason == "expired"
    await wait_for_actions(session_id, {"consent.granted", "consent.expired", "session.ended"})
    assert (await media_end_event(session_id))["reason"] == "expired"


@database_sync_to_async
def consented_presenter() -> tuple[Identity, object]:
    portrait = cv2.imencode(".png", np.full((96, 96, 3), 140, np.uint8))[1].tobytes()
    identity = Identity.objects.create(name="Presenter C", kind="presenter", portrait=portrait)
    now = timezone.now()
    consent = services.record_identity_consent(
        identity,
        person_name="Chen Presenter",
        document_reference="DOC-LIVE-1",
        valid_from=now - dt.timedelta(days=1),
        valid_until=now + dt.timedelta(days=1),
        actor="user:admin",
    )
    return identity, consent


async def test_revoking_the_identity_consent_ends_the_sessions_that_render_it(service):
    identity, consent = await consented_presenter()
    await make_kiosk("consent-r", identity)
    await make_kiosk("consent-other")
    async with (
        SignalingClient.connect(service, "consent-r") as client,
        SignalingClient.connect(service, "consent-other") as bystander,
    ):
        peer, other = KioskPeer(fps=FPS), KioskPeer(fps=FPS)
        try:
            session_id = await live_call(client, peer)
            other_id = await live_call(bystander, other)
            await database_sync_to_async(services.revoke_identity_consent)(
                consent, actor="user:admin", reason="the presenter asked"
            )
            assert await ended_reason(client) == "revoked"
            await assert_processing_stopped(peer)
            # A session that does not render the identity goes on.
            before = other.returned.stamped
            await asyncio.sleep(1.0)
            assert other.returned.stamped > before
        finally:
            await peer.close()
            await other.close()
    rows = await database_sync_to_async(
        lambda: {str(s.pk): s.end_reason for s in KioskSession.objects.all()}
    )()
    assert rows[session_id] == "revoked" and rows[other_id] != "revoked"
    await wait_for_actions(session_id, {"consent.granted", "session.ended"})
    assert (await media_end_event(session_id))["reason"] == "revoked"
    revoked = await database_sync_to_async(
        lambda: AuditEvent.objects.filter(action="identity_consent.revoked").count()
    )()
    assert revoked == 1
    walk = await database_sync_to_async(
        lambda: chain.verify_rows(e.as_chain_row() for e in AuditEvent.objects.order_by("seq"))
    )()
    assert walk.first_break is None
