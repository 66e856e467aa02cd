"""A tail that cannot vanish: every committed batch signs the chain's head into the
checkpoint store outside the database, so deleting even the newest row is reported by
``audit_verify``, with no periodic checkpoint taken. Real PostgreSQL, a real broker and a
real Celery worker process relay the events (the production path)."""

import json

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from consent import audit, chain, chain_head
from consent.models import AuditCheckpoint, AuditEvent
from consent.verification import checkpoint_key, verify_chain
from tests.integration.audit_processes import CeleryWorker, as_superuser, verify_error
from tests.integration.test_audit_delivery import broker, celery_via, wait_for  # noqa: F401

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("bypassing triggers needs PostgreSQL")


@pytest.fixture
def checkpoint_dir(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "checkpoints"
    return settings.AUDIT_CHECKPOINT_DIR


def signed_seq(directory) -> int:
    head = chain_head.read_head(directory)
    return head["seq"] if head else 0


@pytest.mark.django_db(transaction=True)
def test_deleting_the_newest_row_is_reported(tmp_path, broker, celery_via, checkpoint_dir):  # noqa: F811
    worker = CeleryWorker(
        connection.settings_dict,
        broker.url,
        tmp_path / "worker.log",
        AUDIT_CHECKPOINT_DIR=str(checkpoint_dir),
    )
    worker.start()
    try:
        for i in range(6):
            with transaction.atomic():
                audit.record_event("user:olga", "switch.off", "kiosk:demo", details={"i": i})
        wait_for(lambda: AuditEvent.objects.count() == 6, 120, "the relay", worker)
        wait_for(lambda: signed_seq(checkpoint_dir) == 6, 30, "the signed head", worker)
    finally:
        worker.stop()
    assert not AuditCheckpoint.objects.exists()  # no periodic checkpoint: only the head
    call_command("audit_verify")  # untouched: verifies
    as_superuser("DELETE FROM consent_auditevent WHERE seq = 6")
    # The rows left are a consistent chain; only the signed head can tell.
    walk = chain.verify_rows(e.as_chain_row() for e in AuditEvent.objects.order_by("seq"))
    assert walk.first_break is None and walk.last_seq == 5
    message = verify_error()
    assert "tail truncated: head head.json signed the chain up to seq=6" in message
    assert "rows 6..6 are gone" in message


@pytest.mark.django_db(transaction=True)
def test_a_rewritten_newest_row_is_reported_and_the_head_only_moves_forward(checkpoint_dir):
    for i in range(3):
        audit.append_events([audit.make_event("system:test", "tick", details={"i": i})])
    assert signed_seq(checkpoint_dir) == 3
    # An older batch's late writer never moves the head back.
    chain_head.sign_head(2, AuditEvent.objects.get(seq=2).hash, checkpoint_key())
    assert signed_seq(checkpoint_dir) == 3
    row = AuditEvent.objects.get(seq=3).as_chain_row()
    row["details"] = {"i": "forged"}
    as_superuser(
        "UPDATE consent_auditevent SET details = %s, hash = %s WHERE seq = 3",
        [json.dumps(row["details"]), chain.row_hash(row)],
    )
    assert "tail rewritten: row seq=3 differs from head head.json" in verify_error()


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_batch_is_never_signed(checkpoint_dir):
    audit.append_events([audit.make_event("system:test", "tick")])
    with pytest.raises(RuntimeError), transaction.atomic():
        audit.append_events([audit.make_event("system:test", "tick")])
        raise RuntimeError("rolled back")
    assert signed_seq(checkpoint_dir) == 1
    assert verify_chain().ok


@pytest.mark.django_db(transaction=True)
def test_a_forged_head_is_reported_and_a_rotated_key_still_verifies(checkpoint_dir, settings):
    audit.append_events([audit.make_event("system:test", "tick")])
    old_key = settings.AUDIT_CHECKPOINT_KEY
    settings.AUDIT_CHECKPOINT_KEY = "b" * 64  # rotated, the old one not listed: unverifiable
    assert "head.json is unreadable or badly signed" in verify_error()
    settings.AUDIT_CHECKPOINT_RETIRED_KEYS = old_key  # listed as retired: verifies again
    assert verify_chain().ok
    (checkpoint_dir / chain_head.HEAD_FILE).write_text("{torn")
    assert "head.json is unreadable or badly signed" in verify_error()
