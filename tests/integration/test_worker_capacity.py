"""Admission from measured capacity, with real ``manage.py media_engine`` processes.

Each worker publishes a heartbeat (Redis key with a short expiry, and ``worker.heartbeat``
on the dashboard's group) with its measured load; it takes an offer only while the next
session fits under ``MEDIA_ENGINE_MAX_LOAD``; SIGUSR1 drains it; kill -9 lets its heartbeat
expire at once.
"""

import asyncio
import os
import signal
import time

import pytest
import redis.asyncio as aioredis
from django.db import connection

from kiosk.models import Kiosk
from media_engine import capacity, protocol
from tests.support.channel_call import ChannelCall
from tests.support.media_workers import media_workers

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def kiosk(transactional_db):
    return Kiosk.objects.create(slug="counter-1", name="Counter 1", engine="label")


@pytest.fixture
async def registry(redis_url):
    reg = capacity.Registry(aioredis.Redis.from_url(redis_url))
    yield reg
    await reg.close()


async def heartbeat_of(registry, name: str, within: float = 10.0, **fields) -> dict:
    """The first heartbeat of ``name`` with these field values."""
    deadline = time.monotonic() + within
    while True:
        beats = {b["worker"]: b for b in await registry.workers()}
        beat = beats.get(name)
        if beat is not None and all(beat.get(k) == v for k, v in fields.items()):
            return beat
        assert time.monotonic() < deadline, (name, fields, beats)
        await asyncio.sleep(0.1)


async def test_heartbeats_reach_redis_and_the_dashboard_group_and_expire_on_kill(
    layer, registry, redis_url, kiosk
):
    listener = await layer.new_channel()
    await layer.group_add(protocol.STATS_GROUP, listener)
    with media_workers(connection.settings_dict, redis_url, count=2, max_sessions=2) as workers:
        for worker in workers:
            beat = await heartbeat_of(registry, worker.name, sessions=0, accepting=True)
            assert beat["max_sessions"] == 2 and not beat["draining"]
            assert 0 < beat["headroom"] <= capacity.max_load()
            assert time.time() - beat["sent_at"] < capacity.HEARTBEAT_TTL_S
        # the dashboard's group gets the same heartbeats
        seen: set[str] = set()
        deadline = time.monotonic() + 10
        while seen != {"worker-1", "worker-2"}:
            assert time.monotonic() < deadline, seen
            message = await asyncio.wait_for(layer.receive(listener), 5)
            if message["type"] == "worker.heartbeat":
                assert {"load", "cpu", "frame_ms", "sessions"} <= set(message)
                seen.add(message["worker"])
        assert await registry.cluster_has_room()

        killed = workers[0]
        killed.kill()
        gone_at = time.monotonic()
        while await registry.alive(killed.name):
            assert time.monotonic() - gone_at < capacity.HEARTBEAT_TTL_S + 0.5
            await asyncio.sleep(0.05)
        assert await registry.alive(workers[1].name)
    await layer.group_discard(protocol.STATS_GROUP, listener)


async def test_a_worker_takes_offers_only_while_its_measured_load_allows(
    layer, registry, redis_url, kiosk
):
    """A low MEDIA_ENGINE_MAX_LOAD: the idle worker takes one call, then its measured load
    says a second one would not fit, although max_sessions is 4."""
    first, second = ChannelCall(layer, kiosk.slug), ChannelCall(layer, kiosk.slug)
    with media_workers(
        connection.settings_dict, redis_url, count=1, max_sessions=4, MEDIA_ENGINE_MAX_LOAD="0.05"
    ) as (worker,):
        try:
            await first.send_offer()
            await first.connect()
            await first.wait_frames(30)
            beat = await heartbeat_of(registry, worker.name, sessions=1, accepting=False)
            assert beat["load"] > 0.025 and beat["frame_ms"] > 0, beat
            assert not await registry.cluster_has_room()

            await second.send_offer(deadline_s=60)
            await asyncio.sleep(2)
            assert "media.answer" not in second.types()  # not taken: measured full
            await first.wait_frames(15)  # the first call is undisturbed

            await first.control("session.bye", reason="bye")
            await first.wait_for("media.ended", within=15)
            await second.connect()  # room again: the waiting offer is taken
            await second.wait_frames(10)
        finally:
            await first.close()
            await second.close()


async def test_sigusr1_drains_a_worker_it_finishes_its_call_and_exits(
    layer, registry, redis_url, kiosk
):
    call, later = ChannelCall(layer, kiosk.slug), ChannelCall(layer, kiosk.slug)
    with media_workers(connection.settings_dict, redis_url, count=1, max_sessions=2) as (worker,):
        try:
            await call.send_offer()
            await call.connect()
            await call.wait_frames(10)
            os.kill(worker.process.pid, signal.SIGUSR1)
            await heartbeat_of(registry, worker.name, draining=True, accepting=False)
            await later.send_offer(deadline_s=60)
            await call.wait_frames(30)  # the running call goes on
            assert "media.answer" not in later.types()
            assert worker.process.poll() is None
            await call.control("session.bye", reason="bye")
            await call.wait_for("media.ended", within=15)
            try:
                code = await asyncio.to_thread(worker.process.wait, 30)
            except Exception:
                print(worker.output())
                raise
            assert code == 0, worker.output()
            assert not await registry.alive(worker.name)  # removed on the way out
            assert "draining" in worker.output()
        finally:
            await call.close()
            await later.close()
