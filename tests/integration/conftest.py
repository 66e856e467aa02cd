"""Fixtures shared by the integration suites."""

import json
import subprocess
import sys

import pytest
import redis
from channels_redis.core import RedisChannelLayer

from kiosk.settings import redis_channel_layer
from media_engine.protocol import CONTROL_GROUP
from tests.conftest import REPO_ROOT, child_env


@pytest.fixture
def layer(redis_url):
    """The Redis channel layer the worker processes use, on this suite's own emptied db."""
    redis.Redis.from_url(redis_url).flushdb()  # this suite's own Redis db: no stale offers
    return RedisChannelLayer(**redis_channel_layer(redis_url)["CONFIG"])


@pytest.fixture
def redis_layer(settings, redis_url):
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_url]},
        }
    }
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


LISTENER = """
import asyncio, json, sys
from channels_redis.core import RedisChannelLayer

async def main():
    layer = RedisChannelLayer(hosts=[sys.argv[1]])
    channel = await layer.new_channel()
    await layer.group_add(sys.argv[2], channel)
    print("ready", flush=True)
    while True:
        print(json.dumps(await layer.receive(channel)), flush=True)

asyncio.run(main())
"""


@pytest.fixture
def control_listener(redis_url, settings):
    """A separate process on CONTROL_GROUP, as every media worker is."""
    proc = subprocess.Popen(
        [sys.executable, "-c", LISTENER, redis_url, CONTROL_GROUP],
        cwd=REPO_ROOT,
        env=child_env(settings.DATABASES["default"]),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


def read_message(proc) -> dict:
    line = proc.stdout.readline()
    assert line, "the listener ended without a message"
    return json.loads(line)
