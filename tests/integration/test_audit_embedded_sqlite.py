"""The embedded default (SQLite, no broker: Celery runs eagerly) keeps the same audit
trail: events are relayed at commit, the chain verifies, tampering is named, and consent
works end to end. Run as child processes with a SQLite database of their own."""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

SCRIPT = r"""
import datetime as dt
from django.db import connection, transaction
from consent import audit, services
from consent.models import AuditEvent, ConsentGrant
from consent.verification import verify_chain, write_checkpoint
from kiosk.models import Kiosk

kiosk = Kiosk.objects.get(slug="demo")
session = services.start_kiosk_session(kiosk, consent_given=True, language="zh-hans")
services.withdraw_consent(session.pk)
with transaction.atomic():
    audit.record_event("system:embedded", "tick", details={"n": 1})
assert ConsentGrant.objects.get(session=session).withdrawn_at is not None
actions = list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))
assert actions == ["consent.granted", "consent.withdrawn", "session.ended", "tick"], actions
write_checkpoint()
report = verify_chain()
assert report.ok and report.rows == 4, (report.first_break, report.problems)
with connection.cursor() as cursor:
    cursor.execute("UPDATE consent_auditevent SET action = 'forged' WHERE seq = 2")
report = verify_chain()
assert report.first_break.seq == 2, report.first_break
print("EMBEDDED-OK", report.first_break)
"""


def test_embedded_default_on_sqlite(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(PYTHONPATH=str(REPO_ROOT), KIOSK_VAR_DIR=str(tmp_path), DJANGO_DEBUG="1")
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stderr
    assert (tmp_path / "db.sqlite3").exists()
    run = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SCRIPT],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "EMBEDDED-OK row seq=2: content changed" in run.stdout
    verify = subprocess.run(
        [sys.executable, "manage.py", "audit_verify"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert verify.returncode == 1 and "seq=2" in verify.stderr
