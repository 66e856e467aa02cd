"""The Redis channel layer as configured survives an idle receive (redis-py 8 regression)."""

import asyncio
import uuid

from channels_redis.core import RedisChannelLayer

from kiosk.settings import redis_channel_layer


async def test_an_idle_receive_outlives_the_block_timeout(redis_url):
    config = redis_channel_layer(redis_url, prefix=f"idle-{uuid.uuid4().hex[:8]}")["CONFIG"]
    layer = RedisChannelLayer(**config)
    channel = await layer.new_channel()

    async def send_later() -> None:
        await asyncio.sleep(layer.brpop_timeout + 1.5)
        await layer.send(channel, {"type": "late.message"})

    sender = asyncio.create_task(send_later())
    message = await asyncio.wait_for(layer.receive(channel), layer.brpop_timeout + 15)
    assert message == {"type": "late.message"}
    await sender
    await layer.flush()
