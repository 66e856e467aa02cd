"""An asyncio Redis client for this process's ``REDIS_URL`` (plain or Sentinel)."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from django.conf import settings

from kiosk.redis_urls import parse_redis_url

SOCKET_TIMEOUT_S = 2.0  # heartbeats are small: a stuck Redis must not stall a worker


def async_client() -> Any:
    target = parse_redis_url(settings.REDIS_URL)
    options = {"socket_timeout": SOCKET_TIMEOUT_S, "socket_connect_timeout": SOCKET_TIMEOUT_S}
    if not target.uses_sentinel:
        return aioredis.Redis.from_url(target.url, **options)
    sentinel = aioredis.sentinel.Sentinel(
        list(target.sentinels),
        sentinel_kwargs={"password": target.password} if target.password else None,
        **options,
    )
    return sentinel.master_for(target.master, db=target.db, password=target.password, **options)
