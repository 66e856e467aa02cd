"""A media worker's measured load, the admission rule, and the heartbeat that carries them.

Every ``HEARTBEAT_INTERVAL_S`` a worker measures itself (``measure``): its sessions, the
frame time of each (the pipeline's ``total`` p50), and the CPU time the process used. From
those it computes ``load`` (the share of the machine's cores the sessions need, 1.0 = all of
them) and ``headroom`` (what is left below ``MEDIA_ENGINE_MAX_LOAD``). It takes another
offer only while ``admits`` says the next session fits, and publishes the figures:

- in Redis (``registry``), a key per worker that expires after ``HEARTBEAT_TTL_S``: the
  signaling consumer reads it to answer "busy" at once when no worker has room, and to
  notice within two seconds that the worker serving a call is gone (kill -9);
- as ``worker.heartbeat`` on ``protocol.STATS_GROUP``, for the dashboard's live page.

The admission rule is a plain function (``admits``) so that it is tested without processes.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from typing import Any

HEARTBEAT_INTERVAL_S = 0.4
# A worker whose key is older than this is gone; the consumer checks every CHECK_EVERY_S,
# so a killed worker is noticed within HEARTBEAT_TTL_S + CHECK_EVERY_S (< 2 s).
HEARTBEAT_TTL_S = 1.4
CHECK_EVERY_S = 0.25
REDIS_RESTART_GRACE_S = 3
FRAME_BUDGET_MS = 1000.0 / 30.0  # one 30 fps frame
KEY_PREFIX = "media-engine:worker:"


class CapacitySettingError(ValueError):
    """A capacity setting from the environment is not valid."""


def max_load() -> float:
    """``MEDIA_ENGINE_MAX_LOAD``: the load (share of the cores) a worker fills before it
    stops taking offers (default 0.85: some room stays for encoding spikes)."""
    raw = os.environ.get("MEDIA_ENGINE_MAX_LOAD", "0.85")
    try:
        value = float(raw)
    except ValueError:
        raise CapacitySettingError(
            f"MEDIA_ENGINE_MAX_LOAD must be a number between 0.05 and 64, not {raw!r}"
        ) from None
    if not 0.05 <= value <= 64.0:
        raise CapacitySettingError(
            f"MEDIA_ENGINE_MAX_LOAD must be between 0.05 and 64, not {value}"
        )
    return value


@dataclass(frozen=True)
class Load:
    """One heartbeat: what a worker carries and whether it takes another session."""

    worker: str
    sessions: int
    max_sessions: int
    frame_ms: float  # mean of the sessions' frame times (p50 of ``total``), ms
    cpu: float  # the process's CPU time per wall second, as a share of the cores
    cores: int
    load: float  # max(frame-time load, cpu): share of the cores the sessions need
    headroom: float  # max_load - load, never below 0
    accepting: bool
    draining: bool
    sent_at: float  # unix seconds

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def frame_load(frame_ms: list[float], cores: int) -> float:
    """Share of ``cores`` that sessions with these frame times need at 30 fps."""
    return sum(ms / FRAME_BUDGET_MS for ms in frame_ms) / max(1, cores)


def admits(*, sessions: int, max_sessions: int, load: float, limit: float, draining: bool) -> bool:
    """Whether a worker takes one more session.

    Never past ``max_sessions`` nor while draining; an idle worker always takes one; else
    the next session is assumed to cost what the current ones cost on average, and must fit
    under ``limit``."""
    if draining or sessions >= max_sessions:
        return False
    if sessions == 0:
        return True
    return load + load / sessions <= limit + 1e-9


class CpuMeter:
    """The process's CPU time per wall-clock second since the last reading, over the cores."""

    def __init__(self, cores: int) -> None:
        self.cores = max(1, cores)
        self._cpu = time.process_time()
        self._wall = time.monotonic()

    def read(self) -> float:
        cpu, wall = time.process_time(), time.monotonic()
        used, elapsed = cpu - self._cpu, wall - self._wall
        self._cpu, self._wall = cpu, wall
        if elapsed <= 0:
            return 0.0
        return round(used / elapsed / self.cores, 3)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def measure(
    *,
    worker: str,
    frame_ms: list[float],
    pending: int,
    max_sessions: int,
    cpu: float,
    cores: int,
    draining: bool,
    limit: float,
) -> Load:
    """The heartbeat for a worker with sessions of these frame times (``pending``: offers
    taken whose session is still starting)."""
    sessions = len(frame_ms) + pending
    known = [ms for ms in frame_ms if ms > 0]
    load = max(frame_load(known, cores), cpu if sessions else 0.0)
    if pending and known:  # a starting session will cost what the running ones do
        load += pending * frame_load([sum(known) / len(known)], cores)
    return Load(
        worker=worker,
        sessions=sessions,
        max_sessions=max_sessions,
        frame_ms=round(sum(known) / len(known), 2) if known else 0.0,
        cpu=cpu,
        cores=cores,
        load=round(load, 3),
        headroom=round(max(0.0, limit - load), 3),
        accepting=admits(
            sessions=sessions,
            max_sessions=max_sessions,
            load=load,
            limit=limit,
            draining=draining,
        ),
        draining=draining,
        sent_at=time.time(),
    )


# --- the registry in Redis --------------------------------------------------------------------


def _key(worker: str) -> str:
    return KEY_PREFIX + worker


class Registry:
    """The workers' heartbeats in Redis (``redis.asyncio`` client)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def publish(self, load: Load) -> None:
        await self.client.set(
            _key(load.worker), json.dumps(load.as_dict()), px=int(HEARTBEAT_TTL_S * 1000)
        )

    async def forget(self, worker: str) -> None:
        await self.client.delete(_key(worker))

    async def alive(self, worker: str) -> bool:
        return bool(await self.client.exists(_key(worker)))

    async def gone(self, worker: str) -> bool:
        """True when the worker's heartbeat expired. A Redis that restarted a moment ago
        has lost every key: that says nothing until the workers had time to beat again."""
        if await self.alive(worker):
            return False
        info = await self.client.info("server")
        return int(info.get("uptime_in_seconds", 0)) > REDIS_RESTART_GRACE_S

    async def workers(self) -> list[dict[str, Any]]:
        keys = [k async for k in self.client.scan_iter(match=KEY_PREFIX + "*", count=200)]
        if not keys:
            return []
        values = await self.client.mget(keys)
        out = []
        for raw in values:
            if raw is None:
                continue
            try:
                out.append(json.loads(raw))
            except ValueError:
                continue
        return out

    async def cluster_has_room(self) -> bool:
        """True when some live worker takes offers (none alive means no room either)."""
        return any(w.get("accepting") for w in await self.workers())

    async def close(self) -> None:
        await self.client.aclose()


def registry() -> Registry | None:
    """The registry for this process's Redis (``settings.REDIS_URL``), or ``None`` in the
    embedded default (no Redis: the in-process worker answers directly)."""
    from django.conf import settings

    from kiosk import redis_client

    if not settings.REDIS_URL:
        return None
    return Registry(redis_client.async_client())
