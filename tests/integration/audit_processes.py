"""Real processes for the audit delivery tests: a private redis-server (so that it can be
restarted without touching the shared one) and Celery worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from tests.conftest import REPO_ROOT, child_env
from tests.support.redis_server import PrivateRedis, free_port

__all__ = ["CeleryWorker", "PrivateRedis", "free_port"]


class CeleryWorker:
    """``python -m celery -A kiosk worker`` against the test database and a broker."""

    def __init__(
        self,
        db_settings: dict,
        broker_url: str,
        log_path: Path,
        *,
        beat_dir: Path | None = None,
        concurrency: int = 2,
        **env: str,
    ) -> None:
        self.env = child_env(
            db_settings,
            REDIS_URL=broker_url,
            CELERY_VISIBILITY_TIMEOUT_S="4",
            CELERY_UNACKED_RESTORE_INTERVAL_S="1",
            CELERY_UNACKED_RESTORE_THROTTLE="1",
            AUDIT_SWEEP_INTERVAL_S="2",
            **env,
        )
        self.log_path = log_path
        self.beat_dir = beat_dir
        self.concurrency = concurrency
        self.process: subprocess.Popen | None = None
        self.restarts = 0

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "kiosk",
            "worker",
            "--loglevel",
            "INFO",
            "--pool",
            "prefork",
            "--concurrency",
            str(self.concurrency),
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        if self.beat_dir is not None:
            command += ["--beat", "--schedule", str(self.beat_dir / "celerybeat-schedule")]
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def supervise(self) -> bool:
        """Start the worker again if it exited, as its supervisor does in production
        (systemd ``Restart=always``, compose ``restart``): Celery 5.7 / kombu 5.7 can end
        the worker with "Unrecoverable error" while a broker restart closes its connection
        under it. Returns True when it restarted it."""
        if self.process is not None and self.process.poll() is not None:
            self.restarts += 1
            self.start()
            return True
        return False

    def kill9(self) -> None:
        """SIGKILL the worker and its pool children at once (no warm shutdown, no acks)."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        self.process = None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def as_superuser(sql: str, params=None) -> None:
    """Bypass the append-only triggers the way a database superuser could."""
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute(sql, params)
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")


def verify_error() -> str:
    """What ``manage.py audit_verify`` says of a broken chain."""
    with pytest.raises(CommandError) as caught:
        call_command("audit_verify")
    return str(caught.value)
