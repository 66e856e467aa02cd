"""Tampering as the database superuser (bypassing the triggers) is caught by audit_verify:
a changed or deleted row is named exactly, a truncated or rewritten tail is caught by the
signed checkpoints, and retention keeps the chain verifiable."""

import datetime as dt
import json
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from consent import audit, chain
from consent.models import AuditAnchor, AuditEvent
from consent.retention import prune_audit_trail
from consent.verification import CHECKPOINT_FILE, ChainBroken, verify_chain, write_checkpoint
from tests.conftest import REPO_ROOT, child_env
from tests.integration.audit_processes import as_superuser, verify_error

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def checkpoint_dir(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "checkpoints"
    return settings.AUDIT_CHECKPOINT_DIR


def append(n: int, tag: str = "t") -> None:
    audit.append_events(
        [audit.make_event("system:test", "tick", details={"tag": tag, "i": i}) for i in range(n)]
    )


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("bypassing triggers needs PostgreSQL")


@pytest.mark.django_db
def test_untouched_chain_verifies(capsys):
    append(40)
    write_checkpoint()
    call_command("audit_verify")
    assert "audit chain OK: 40 rows" in capsys.readouterr().out


@pytest.mark.django_db
def test_changed_row_is_named_exactly():
    append(50)
    event_id = AuditEvent.objects.get(seq=23).event_id
    as_superuser(
        'UPDATE consent_auditevent SET details = \'{"tag": "forged", "i": 22}\' WHERE seq = 23'
    )
    message = verify_error()
    assert "seq=23: content changed" in message
    assert str(event_id) in message


@pytest.mark.django_db
def test_changed_hash_too_is_named_by_the_next_row():
    append(10)
    row = AuditEvent.objects.get(seq=4).as_chain_row()
    row["action"] = "forged"
    as_superuser(
        "UPDATE consent_auditevent SET action = 'forged', hash = %s WHERE seq = 4",
        [chain.row_hash(row)],
    )
    assert "seq=5: prev_hash does not match" in verify_error()


@pytest.mark.django_db
def test_deleted_row_is_named_exactly():
    append(30)
    as_superuser("DELETE FROM consent_auditevent WHERE seq = 17")
    assert "seq=17: missing (deleted)" in verify_error()


@pytest.mark.django_db
def test_truncated_tail_is_caught_by_the_checkpoint(checkpoint_dir):
    append(30)
    write_checkpoint()
    append(10)
    write_checkpoint()
    as_superuser("DELETE FROM consent_auditevent WHERE seq > 35")
    # The chain itself still verifies: only the checkpoint can tell.
    walk = chain.verify_rows(e.as_chain_row() for e in AuditEvent.objects.order_by("seq"))
    assert walk.first_break is None and walk.last_seq == 35
    message = verify_error()
    assert "tail truncated" in message
    assert "seq=40" in message and "rows 36..40 are gone" in message
    # The exported file alone catches it too, when the checkpoint table was emptied as well.
    as_superuser("DELETE FROM consent_auditcheckpoint")
    assert "tail truncated" in verify_error()
    assert (checkpoint_dir / CHECKPOINT_FILE).read_text().count("\n") == 2


@pytest.mark.django_db
def test_rewritten_tail_is_caught_by_the_checkpoint():
    append(20)
    write_checkpoint()  # seq 20
    append(20)
    write_checkpoint()  # seq 40
    # Rewrite rows 31..40 with recomputed hashes: the chain is consistent again.
    prev = AuditEvent.objects.get(seq=30).hash
    for seq in range(31, 41):
        row = AuditEvent.objects.get(seq=seq).as_chain_row()
        row["details"] = {"tag": "rewritten", "i": seq}
        row["prev_hash"] = prev
        prev = chain.row_hash(row)
        as_superuser(
            "UPDATE consent_auditevent SET details = %s, prev_hash = %s, hash = %s WHERE seq = %s",
            [json.dumps(row["details"]), row["prev_hash"], prev, seq],
        )
    report = verify_chain()
    assert report.first_break is None
    assert any("tail rewritten" in p and "seq=40" in p and "seq=21" in p for p in report.problems)


@pytest.mark.django_db
def test_checkpoint_refuses_to_sign_a_broken_chain():
    append(10)
    write_checkpoint()
    append(5)
    as_superuser("UPDATE consent_auditevent SET target = 'x' WHERE seq = 12")
    with pytest.raises(ChainBroken, match="seq=12"):
        write_checkpoint()


@pytest.mark.django_db
def test_forged_checkpoint_line_is_reported(checkpoint_dir):
    append(5)
    write_checkpoint()
    with (checkpoint_dir / CHECKPOINT_FILE).open("a") as handle:
        handle.write(json.dumps({"seq": 3, "hash": "ab" * 32, "at": "x", "signature": "00"}) + "\n")
    assert "badly signed" in verify_error()


@pytest.mark.django_db
def test_retention_prunes_old_rows_and_the_chain_still_verifies():
    append(15, "old")
    write_checkpoint()  # seq 15: below the new start after pruning, ignored then
    append(5, "new")
    new_first = AuditEvent.objects.get(seq=16)
    days = 200
    result = prune_audit_trail(now=new_first.recorded_at + dt.timedelta(days=days), days=days)
    assert (result.pruned, result.first_seq) == (15, 16)
    assert AuditEvent.objects.order_by("seq").first().seq == 16
    anchor = AuditAnchor.objects.get()
    assert anchor.prev_hash == new_first.prev_hash
    # The retention run records itself; the relay appends it after the anchored start.
    audit.sweep_outbox()
    report = verify_chain()
    assert report.ok, (report.first_break, report.problems)
    assert report.first_seq == 16 and report.rows == 6
    # A forged anchor is caught.
    as_superuser("UPDATE consent_auditanchor SET prev_hash = %s", ["f" * 64])
    assert "seq=16: prev_hash" in verify_error()


@pytest.mark.django_db
def test_retention_refuses_to_anchor_a_tampered_part():
    append(10)
    as_superuser("UPDATE consent_auditevent SET target = 'x' WHERE seq = 3")
    with pytest.raises(ChainBroken):
        prune_audit_trail(now=timezone.now() + dt.timedelta(days=400), days=200)
    assert AuditEvent.objects.count() == 10
    assert not AuditAnchor.objects.exists()


@pytest.mark.django_db
def test_retention_refuses_a_period_below_policy(settings):
    settings.AUDIT_RETENTION_DAYS = 30
    with pytest.raises(ValueError, match="at least 183"):
        prune_audit_trail()


@pytest.mark.django_db(transaction=True)
def test_audit_verify_command_names_the_row_in_a_subprocess(checkpoint_dir):
    append(25)
    write_checkpoint()
    env = child_env(connection.settings_dict, AUDIT_CHECKPOINT_DIR=str(checkpoint_dir))
    command = [sys.executable, "manage.py", "audit_verify", "--json"]
    ok = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout.strip().splitlines()[-1])["rows"] == 25
    as_superuser("UPDATE consent_auditevent SET actor = 'mallory' WHERE seq = 9")
    bad = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 1
    report = json.loads(bad.stdout.strip().splitlines()[-1])
    assert report["first_bad_seq"] == 9 and report["ok"] is False
    assert "seq=9" in bad.stderr
