"""Rate limits of the kiosk socket, shared by every daphne process (docs/security.md).

Fixed-window counters in the ``limits`` cache: Redis when ``REDIS_URL`` is set (so that
several daphne processes count together), the process's memory in the embedded default
(one process). ``KIOSK_RATE_LIMITS`` names each limit as ``[count, window seconds]``:

- ``connect_kiosk`` / ``connect_address``: signaling connections per kiosk / per address;
- ``consent_kiosk`` / ``consent_address``: visits (consent answers) per kiosk / per address.

A cache that cannot be reached raises: the caller refuses the client (fails closed).
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.signals import setting_changed
from django.dispatch import receiver

CACHE_ALIAS = "limits"
_client: Any = None
_client_lock = threading.Lock()


def counters() -> Any:
    """This process's one client of the ``limits`` cache. Not ``caches[CACHE_ALIAS]``:
    Django keeps a cache object per async context, so each kiosk socket (a consumer is a
    context) would open a Redis connection pool of its own and leave it behind (found by
    bench/soak.py). redis-py's pool is thread-safe; one serves every socket."""
    global _client
    with _client_lock:
        if _client is None:
            _client = caches.create_connection(CACHE_ALIAS)
        return _client


@receiver(setting_changed)
def forget_client(setting: str = "CACHES", **_: Any) -> None:
    """Drop the client (tests that change ``CACHES`` get a client of the new cache)."""
    global _client
    if setting != "CACHES":
        return
    with _client_lock:
        if _client is not None:
            _client.close()
        _client = None


def _key(kind: str, subject: str, bucket: int) -> str:
    digest = hashlib.sha256(subject.encode("utf-8", "replace")).hexdigest()[:32]
    return f"kiosk-rate:{kind}:{digest}:{bucket}"


def hit(kind: str, subject: str, now: float | None = None) -> bool:
    """Count one event of ``kind`` for ``subject``; False once its limit is exceeded."""
    limit, window = settings.KIOSK_RATE_LIMITS[kind]
    bucket = int((time.time() if now is None else now) // window)
    key = _key(kind, subject, bucket)
    cache = counters()
    cache.add(key, 0, timeout=int(window) * 2)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=int(window) * 2)
        count = 1
    return count <= limit


def allow(kind: str, kiosk: str, address: str) -> bool:
    """Count an event for the kiosk and for the address; False if either is over its limit."""
    by_kiosk = hit(f"{kind}_kiosk", kiosk)
    by_address = hit(f"{kind}_address", address)
    return by_kiosk and by_address
