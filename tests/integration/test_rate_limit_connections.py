"""The rate counters (kiosk/limits.py) share one Redis client per process: a kiosk socket
that counts a connection must not leave a Redis connection behind (bench/soak.py found
one per socket: Django's ``caches`` is per async context, and each consumer is one)."""

from __future__ import annotations

import asyncio
import os
from urllib.parse import urlsplit

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from kiosk import limits
from kiosk.redis_urls import parse_redis_url
from tests.support.procfds import fd_kinds

pytestmark = pytest.mark.integration
SOCKETS = 40


def redis_connections(port: int) -> int:
    return fd_kinds(os.getpid()).get(f"out:{port}", 0)


async def test_each_socket_does_not_open_its_own_redis_connection(redis_url):
    port = urlsplit(redis_url).port or 6379
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "limits": parse_redis_url(redis_url).cache_config(KEY_PREFIX="leak-test"),
    }
    with override_settings(CACHES=caches):
        limits.forget_client()
        before = redis_connections(port)
        for n in range(SOCKETS):  # daphne runs each socket's consumer in a task of its own
            await asyncio.create_task(socket_counts(f"kiosk-{n}"))
        after = redis_connections(port)
        limits.forget_client()
    assert after - before >= 1, "the counters did not reach Redis"
    assert after - before <= 2, f"{after - before} Redis connections left by {SOCKETS} sockets"


async def socket_counts(kiosk: str) -> None:
    """What a kiosk socket's consumer does (kiosk/consumers.py), in a context of its own."""
    await sync_to_async(limits.allow)("connect", kiosk, "127.0.0.1")
