"""Shared fixtures. Real services: PostgreSQL from DATABASE_URL, Redis from TEST_REDIS_URL."""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


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
    if db_settings["ENGINE"].endswith("postgresql"):
        user = db_settings.get("USER") or "postgres"
        host = db_settings.get("HOST") or "127.0.0.1"
        port = db_settings.get("PORT") or 5432
        env["DATABASE_URL"] = f"postgres://{user}@{host}:{port}/{db_settings['NAME']}"
    env.update(extra)
    return env
