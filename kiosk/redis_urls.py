"""Where Redis is, from one URL: a plain server or a Sentinel-watched master.

``REDIS_URL`` is either ``redis://[:password@]host:port/db`` (``rediss://`` for TLS) or,
for a site without a single point of failure,

    sentinel://[:password@]host1:26379,host2:26379,host3:26379/<master name>/<db>

The same target feeds the Channels layer (channels-redis' ``sentinels``/``master_name``
host), the Celery broker (kombu's ``sentinel://`` transport with ``master_name``) and the
media workers' heartbeat registry (``redis.asyncio.sentinel``) and Django's cache of the
signaling rate limits (``SentinelPool``). No Django imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from redis.sentinel import Sentinel, SentinelConnectionPool

SENTINEL_DEFAULT_PORT = 26379


class RedisUrlError(ValueError):
    """``REDIS_URL`` cannot be understood."""


@dataclass(frozen=True)
class RedisTarget:
    url: str  # the URL as given
    sentinels: tuple[tuple[str, int], ...] = ()
    master: str = ""
    db: int = 0
    password: str | None = None

    @property
    def uses_sentinel(self) -> bool:
        return bool(self.sentinels)

    def channel_layer_host(self, **extra: Any) -> dict[str, Any]:
        """One entry of channels-redis' ``hosts``."""
        if not self.uses_sentinel:
            return {"address": self.url, **extra}
        host: dict[str, Any] = {
            "sentinels": [list(s) for s in self.sentinels],
            "master_name": self.master,
            "db": self.db,
            **extra,
        }
        if self.password:
            host["password"] = self.password
            host["sentinel_kwargs"] = {"password": self.password}
        return host

    def celery_broker(self) -> tuple[str, dict[str, Any]]:
        """kombu's broker URL and the transport options it needs."""
        if not self.uses_sentinel:
            return self.url, {}
        auth = f":{self.password}@" if self.password else ""
        url = ";".join(f"sentinel://{auth}{h}:{p}/{self.db}" for h, p in self.sentinels)
        options: dict[str, Any] = {"master_name": self.master}
        if self.password:
            options["sentinel_kwargs"] = {"password": self.password}
        return url, options

    def cache_config(self, **config: Any) -> dict[str, Any]:
        """Django's Redis cache on this target (a Sentinel URL through ``SentinelPool``)."""
        cache: dict[str, Any] = {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": self.url,
            **config,
        }
        if self.uses_sentinel:
            cache["OPTIONS"] = {"pool_class": "kiosk.redis_urls.SentinelPool"}
        return cache


class SentinelPool(SentinelConnectionPool):
    """A connection pool to the master that a ``sentinel://`` URL's sentinels name, made the
    way Django's Redis cache makes its pools (``from_url``)."""

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SentinelPool:
        target = parse_redis_url(url)
        sentinel_kwargs = {"password": target.password} if target.password else None
        sentinel = Sentinel(list(target.sentinels), sentinel_kwargs=sentinel_kwargs)
        return cls(target.master, sentinel, db=target.db, password=target.password, **options)


def parse_redis_url(url: str) -> RedisTarget:
    """A ``RedisTarget`` for ``url``; raises ``RedisUrlError`` with what is wrong."""
    parts = urlsplit(url)
    if parts.scheme in ("redis", "rediss", "unix"):
        return RedisTarget(url=url)
    if parts.scheme != "sentinel":
        raise RedisUrlError(
            f"REDIS_URL must start with redis://, rediss:// or sentinel://, not {url[:40]!r}"
        )
    netloc = parts.netloc
    password = None
    if "@" in netloc:
        auth, netloc = netloc.rsplit("@", 1)
        password = unquote(auth.split(":", 1)[1] if ":" in auth else auth) or None
    sentinels = tuple(_host_port(item) for item in netloc.split(",") if item)
    path = [p for p in parts.path.split("/") if p]
    if not sentinels:
        raise RedisUrlError("a sentinel:// REDIS_URL names at least one sentinel host")
    if not path:
        raise RedisUrlError("a sentinel:// REDIS_URL ends with /<master name>[/<db>]")
    try:
        db = int(path[1]) if len(path) > 1 else 0
    except ValueError:
        raise RedisUrlError(f"the Redis db must be a number, not {path[1]!r}") from None
    return RedisTarget(url=url, sentinels=sentinels, master=path[0], db=db, password=password)


def _host_port(item: str) -> tuple[str, int]:
    host, _, port = item.rpartition(":") if ":" in item else (item, "", "")
    if not host:
        host, port = item, ""
    try:
        return host, int(port) if port else SENTINEL_DEFAULT_PORT
    except ValueError:
        raise RedisUrlError(f"bad sentinel port in {item!r}") from None
