"""The live page's socket: staff only, and it passes the workers' stats on (real Redis)."""

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from kiosk.dashboard.consumers import LiveSessionsConsumer
from media_engine.protocol import CONTROL_GROUP, STATS_GROUP
from tests.dashboard_support import staff_user, totp_device

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


@pytest.fixture
def redis_layer(settings, redis_url):
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_url], "prefix": "dashboard-test"},
        }
    }
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
async def close_thread_connections():
    """database_sync_to_async keeps its thread's connection (CONN_MAX_AGE); close it so
    the test database can be dropped."""
    yield
    from django.db import connections

    await sync_to_async(connections.close_all)()


async def _connect(user, verified: bool = True):
    """Connect as ``user``; ``verified``: the session holds their second factor, as after a
    login with a code (django-otp's session key)."""
    from django_otp import DEVICE_ID_SESSION_KEY

    communicator = WebsocketCommunicator(LiveSessionsConsumer.as_asgi(), "/ws/dashboard/live/")
    communicator.scope["user"] = user
    session = {}
    if verified and user.is_authenticated:
        device = await sync_to_async(totp_device)(user)
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    communicator.scope["session"] = session
    connected, code = await communicator.connect(timeout=10)
    return communicator, connected, code


async def test_anonymous_and_roleless_users_are_refused(redis_layer):
    for user in (AnonymousUser(), await sync_to_async(staff_user)(None)):
        communicator, connected, code = await _connect(user)
        assert not connected
        assert code == 4403
        await communicator.disconnect()


@pytest.mark.parametrize("role", ["operator", "administrator"])
async def test_staff_who_can_act_are_refused_without_their_second_factor(redis_layer, role):
    communicator, connected, code = await _connect(
        await sync_to_async(staff_user)(role), verified=False
    )
    assert not connected and code == 4403
    await communicator.disconnect()


@pytest.mark.parametrize("role", ["auditor", "operator", "administrator"])
async def test_staff_get_the_workers_stats_and_switch_changes(redis_layer, role):
    communicator, connected, _code = await _connect(await sync_to_async(staff_user)(role))
    assert connected
    layer = get_channel_layer()
    stats = {"fps": 24.5, "latency_ms": 61.0, "rung": "540p"}
    await layer.group_send(
        STATS_GROUP,
        {
            "type": "session.stats",
            "session_id": "s-1",
            "kiosk": "demo",
            "worker": "w-1",
            "stats": stats,
        },
    )
    message = await communicator.receive_json_from(timeout=10)
    assert message == {
        "type": "stats",
        "session_id": "s-1",
        "kiosk": "demo",
        "worker": "w-1",
        "stats": stats,
    }
    # A message type the page does not know is ignored, the socket stays open.
    await layer.group_send(CONTROL_GROUP, {"type": "workers.something_new", "x": 1})
    await layer.group_send(CONTROL_GROUP, {"type": "fusion.switch", "kiosk": None})
    assert await communicator.receive_json_from(timeout=10) == {"type": "switch", "kiosk": None}
    await layer.group_send(
        STATS_GROUP,
        {
            "type": "session.ended",
            "session_id": "s-1",
            "kiosk": "demo",
            "worker": "w-1",
            "reason": "disabled",
        },
    )
    message = await communicator.receive_json_from(timeout=10)
    assert message["type"] == "ended" and message["reason"] == "disabled"
    await communicator.disconnect()
