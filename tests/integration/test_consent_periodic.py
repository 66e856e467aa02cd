"""The embedded default's beat: without a broker, the periodic jobs (outbox sweep, consent
expiry, checkpoints) run on the server's event loop, and expiry reaches the in-process
media engine's control group."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connections

from consent import periodic, services
from consent.models import AuditEvent, AuditOutbox, ConsentGrant, KioskSession
from consent.verification import CHECKPOINT_FILE
from kiosk.models import Kiosk
from media_engine.protocol import CONTROL_GROUP

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
]


@pytest.fixture
def embedded(settings, tmp_path):
    assert settings.CELERY_TASK_ALWAYS_EAGER
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.AUDIT_CHECKPOINT_DIR = tmp_path
    settings.CELERY_BEAT_SCHEDULE = {
        name: {**entry, "schedule": 0.5} for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
    }
    return settings


def stale_outbox_and_expired_session() -> str:
    services.ensure_shipped_texts()
    kiosk = Kiosk.objects.create(slug="embedded-2", name="Embedded 2", engine="label")
    session = services.start_kiosk_session(kiosk, consent_given=True, language="en")
    ConsentGrant.objects.filter(session=session).update(expires_at=session.started_at)
    # An event whose relay never ran (as after a crash): only the sweep can move it.
    AuditOutbox.objects.create(
        occurred_at=session.started_at, actor_kind="system", actor="test", action="stale"
    )
    return str(session.pk)


async def test_embedded_jobs_sweep_expire_and_checkpoint(embedded, tmp_path):
    layer = get_channel_layer()
    control = await layer.new_channel()
    await layer.group_add(CONTROL_GROUP, control)
    session_id = await sync_to_async(stale_outbox_and_expired_session)()
    assert await sync_to_async(AuditOutbox.objects.count)() >= 1
    assert periodic.ensure_started() is periodic.ensure_started()
    try:
        message = await asyncio.wait_for(layer.receive(control), 60)
        assert message["type"] == "sessions.end" and message["session_id"] == session_id
        assert message["reason"] == "expired"

        def settled() -> bool:
            return (
                not AuditOutbox.objects.exists()
                and AuditEvent.objects.filter(action="consent.expired").exists()
                and (tmp_path / CHECKPOINT_FILE).exists()
            )

        for _ in range(120):
            if await sync_to_async(settled)():
                break
            await asyncio.sleep(0.25)
        assert await sync_to_async(settled)()
        row = await sync_to_async(KioskSession.objects.get)(pk=session_id)
        assert row.end_reason == "expired"
        assert await sync_to_async(AuditEvent.objects.filter(action="stale").count)() == 1
    finally:
        await periodic.stop()
        await sync_to_async(connections.close_all)()
