"""Shared fixtures. Real services: PostgreSQL from DATABASE_URL, Redis from TEST_REDIS_URL."""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# Media events go to the audit trail through a spool and Celery (media_engine/events.py).
# Tests that are not about the audit trail leave that path off (it would start a forwarder
# thread in every test process); the audit tests turn it on where they check it.
os.environ.setdefault("AUDIT_MEDIA_EVENTS", "0")


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.fail("TEST_REDIS_URL is not set: run the suite with `make test`")
    return url


def child_env(db_settings: dict, **extra: str) -> dict[str, str]:
    """Environment for a worker process (media engine, Celery) that must see the test
    database that pytest-django created, not the development one."""
    env = dict(os.environ)
    # Children are started as `python -m ...` from REPO_ROOT; PYTHONPATH makes sure this
    # checkout's packages win over any installed copy.
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    # Every candidate in the tests is on loopback, which a kiosk may only name when the
    # kiosk networks allow it (kiosk/ice_policy.py).
    env.setdefault("KIOSK_NETWORKS", "127.0.0.0/8")
    # The children run the embedded default's settings on the test's real services: with
    # DATABASE_URL or REDIS_URL set, the settings refuse to start without an explicit mode.
    env.setdefault("KIOSK_EMBEDDED", "1")
    if db_settings["ENGINE"].endswith("postgresql"):
        user = db_settings.get("USER") or "postgres"
        host = db_settings.get("HOST") or "127.0.0.1"
        port = db_settings.get("PORT") or 5432
        env["DATABASE_URL"] = f"postgres://{user}@{host}:{port}/{db_settings['NAME']}"
    env.update(extra)
    return env


def embedded_service_env(db_settings: dict, **extra: str) -> dict[str, str]:
    """A daphne of the embedded default (in-memory channel layer, media engine in process,
    loopback candidates) on the test database."""
    env = child_env(
        db_settings,
        MEDIA_ENGINE_IN_PROCESS="1",
        MEDIA_ENGINE_LOOPBACK_CANDIDATES="1",
        DJANGO_DEBUG="1",
        **extra,
    )
    env.pop("REDIS_URL", None)
    return env


# --- The audit trail's append-only triggers and the test database flush --------------------
# PostgreSQL refuses TRUNCATE on the audit tables (consent migration 0005), and Django's
# TransactionTestCase empties every table with TRUNCATE after each transactional test. The
# test harness (and only it) lifts the triggers around that flush and puts them back at
# once, so every test still runs against the real triggers.
AUDIT_PROTECTED_TABLES = ("consent_auditevent", "consent_auditanchor", "consent_auditcheckpoint")


def _set_audit_triggers(connection, enabled: bool) -> None:
    if connection.vendor != "postgresql":
        return
    verb = "ENABLE" if enabled else "DISABLE"
    with connection.cursor() as cursor:
        for table in AUDIT_PROTECTED_TABLES:
            cursor.execute(f"ALTER TABLE {table} {verb} TRIGGER USER")


def pytest_configure(config) -> None:
    from django.db import connections
    from django.test import TransactionTestCase

    original = TransactionTestCase._fixture_teardown

    def _fixture_teardown(self) -> None:
        aliases = [a for a in self._databases_names(include_mirrors=False)]
        for alias in aliases:
            _set_audit_triggers(connections[alias], enabled=False)
        try:
            original(self)
        finally:
            for alias in aliases:
                _set_audit_triggers(connections[alias], enabled=True)

    TransactionTestCase._fixture_teardown = _fixture_teardown


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """Each test starts with empty signaling rate counters (kiosk/limits.py): the
    in-process ones, and those that test servers keep in this suite's own Redis db."""
    from django.core.cache import caches

    caches["limits"].clear()
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        import redis

        client = redis.Redis.from_url(url)
        try:
            keys = list(client.scan_iter(match="*kiosk-rate:*", count=500))
            if keys:
                client.delete(*keys)
        except redis.RedisError:
            pass
        finally:
            client.close()
    yield


@pytest.fixture
def admin_client(client, admin_user):
    """pytest-django's superuser client, logged in with the second factor a superuser needs
    (kiosk.dashboard.second_factor)."""
    from tests.dashboard_support import login

    login(client, admin_user)
    return client
