"""Fixtures shared by the integration suites."""

import pytest
import redis
from channels_redis.core import RedisChannelLayer

from kiosk.settings import redis_channel_layer


@pytest.fixture
def layer(redis_url):
    """The Redis channel layer the worker processes use, on this suite's own emptied db."""
    redis.Redis.from_url(redis_url).flushdb()  # this suite's own Redis db: no stale offers
    return RedisChannelLayer(**redis_channel_layer(redis_url)["CONFIG"])
