"""The production-like kiosk service of the integration tests: daphne and media worker
processes (one session each) on Redis and the test database, no embedded worker.

    prepare_kiosks(monkeypatch, ("hall-1", "hall-2"))
    with kiosk_service(settings.DATABASES["default"], redis_url) as service:
        ...  # service.base, service.env, service.processes, service.worker("worker-a")

Every test that runs the real kiosk loop through processes starts it this way.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aioice.ice
import redis
from channels.db import database_sync_to_async
from django.db import connections

from consent.models import KioskSession
from kiosk.models import Engine, Kiosk
from media_engine import ice
from tests.conftest import child_env
from tests.support.kioskclient import SignalingClient
from tests.support.loopclient import KioskPeer
from tests.support.servers import (
    Process,
    running,
    start_daphne,
    start_media_worker,
    wait_for_other_connections_to_close,
)

WORKERS = ("worker-a", "worker-b")
WAIT_S = 30.0


@dataclass
class Service:
    base: str
    env: dict[str, str]
    processes: list[Process]  # daphne first, then the workers
    redis: Any = None  # a private Redis server, when the test started one

    def worker(self, name: str) -> Process:
        return next(p for p in self.processes if p.name == name)

    def restart_daphne(self) -> None:
        self.processes[0].stop()
        port = int(self.base.rsplit(":", 1)[1])
        self.processes[0], _ = start_daphne(self.env, port)


def prepare_kiosks(monkeypatch: Any, slugs: tuple[str, ...]) -> None:
    """Kiosks ``slugs`` (label engine) in the test database; this process's aiortc kiosks
    offer 127.0.0.1 too (``media_engine/ice.py``); and this test's own
    database calls, which run in threads, close their connection after each call so that
    the test database can be dropped at the end."""
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    for slug in slugs:
        Kiosk.objects.create(slug=slug, name=slug.title(), engine=Engine.LABEL)
    offer_loopback(monkeypatch)


def offer_loopback(monkeypatch: Any) -> None:
    """This process's aiortc kiosks offer 127.0.0.1 too (for this test only)."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", aioice.ice.get_host_addresses)
    ice.offer_loopback_candidates()


def drop_channel_layer_keys(redis_url: str) -> None:
    """No stale offers from an earlier run: drop the channel layer's keys (prefix "asgi"),
    nothing else (a Celery broker may share this Redis db)."""
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter("asgi*"):
        client.delete(key)


@contextlib.contextmanager
def kiosk_service(
    db_settings: dict, redis_url: str, *, workers: tuple[str, ...] = WORKERS, **env: str
) -> Iterator[Service]:
    """daphne and ``workers`` (one session each) on ``redis_url``; ``env``: more settings."""
    environment = child_env(
        db_settings,
        REDIS_URL=redis_url,
        MEDIA_ENGINE_IN_PROCESS="0",
        MEDIA_ENGINE_LOOPBACK_CANDIDATES="1",
        MEDIA_ENGINE_MAX_SESSIONS="1",
        **env,
    )
    daphne, base = start_daphne(environment)
    with running([daphne]) as processes:
        for name in workers:
            processes.append(start_media_worker(environment, name))
        yield Service(base, environment, processes)
    wait_for_other_connections_to_close(db_settings)


async def start_call(client: SignalingClient) -> KioskPeer:
    """Consent (unless this socket already has a session), offer, and connect a kiosk peer."""
    if not client.session_id:
        await client.consent()
    peer = KioskPeer()
    await peer.accept(await client.offer(await peer.offer()))
    return peer


async def stamped_frames_back(peer: KioskPeer, count: int, wait_s: float = WAIT_S) -> None:
    """Wait until ``count`` more stamped (fused, not paused) frames came back to ``peer``."""
    await asyncio.wait_for(peer.track_arrived.wait(), wait_s)
    start = peer.returned.stamped
    deadline = time.monotonic() + wait_s
    while peer.returned.stamped - start < count:
        assert time.monotonic() < deadline, f"{count} stamped frames did not come back"
        await asyncio.sleep(0.02)


async def session_row(session_id: str) -> KioskSession:
    return await database_sync_to_async(KioskSession.objects.get)(pk=session_id)
