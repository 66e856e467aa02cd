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
    assert await communicator.receive_json_from(timeout=10) == {"type": "calls", "calls": []}
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


def _portal_call_setup():
    """A kiosk, the call's consent texts, an agent (synthetic avatar) and a supervisor who
    may also see the dashboard."""
    from django.contrib.auth.models import Group

    from kiosk.models import Kiosk
    from kiosk.portal import services
    from tests.browser.conftest import ensure_consent_texts
    from tests.integration.test_portal_call import make_agent

    ensure_consent_texts()
    services.ensure_portal_setup()
    kiosk = Kiosk.objects.get_or_create(slug="demo", defaults={"name": "Demo kiosk"})[0]
    make_agent()
    boss = staff_user("operator", "boss")
    boss.groups.add(Group.objects.get(name="supervisor"))
    return kiosk, boss


async def test_the_portal_calls_table_follows_every_change_of_a_call(redis_layer):
    from django.contrib.auth import get_user_model

    from consent.models import EndReason
    from kiosk.portal import services

    kiosk, boss = await sync_to_async(_portal_call_setup)()
    agent = await sync_to_async(get_user_model().objects.get)(username="agent-ann")
    watcher, connected, _code = await _connect(boss)
    auditor, connected_too, _code = await _connect(await sync_to_async(staff_user)("auditor"))
    assert connected and connected_too
    for page in (watcher, auditor):
        assert await page.receive_json_from(timeout=10) == {"type": "calls", "calls": []}

    async def both(expect) -> None:
        for page, can_watch in ((watcher, True), (auditor, False)):
            message = await page.receive_json_from(timeout=10)
            assert message["type"] == "calls"
            expect(message["calls"], can_watch)

    call = await sync_to_async(services.join_queue)(
        kiosk, service="cards", language="en", text_sha256="", blur=True, customer_channel="x"
    )

    def waiting(calls, can_watch):
        assert [c["call_id"] for c in calls] == [str(call.pk)]
        row = calls[0]
        assert (row["status"], row["agent"], row["kiosk"], row["blurred"]) == (
            "Waiting in the queue", "", "Demo kiosk", True,
        )  # fmt: skip
        assert row["session_id"] == str(call.session_id) and row["watch_url"] == ""

    await both(waiting)
    await sync_to_async(services.accept_call)(agent, agent_channel="y", call_id=call.pk)

    def accepted(calls, can_watch):
        assert calls[0]["agent"] == "agent-ann" and calls[0]["status"].startswith("Accepted")

    await both(accepted)
    await sync_to_async(services.record_media)(call.pk, worker="w-7", control_channel="c")
    await both(lambda calls, _: calls[0]["worker"] == "w-7" or pytest.fail(str(calls)))
    await sync_to_async(services.allow_supervisor)(call.pk, agent, True)

    def supervised(calls, can_watch):
        assert calls[0]["supervisor_allowed"] is True
        # Only the supervisor gets the Watch link.
        assert bool(calls[0]["watch_url"]) is can_watch
        assert not can_watch or calls[0]["watch_url"].endswith(f"{call.pk}/")

    await both(supervised)
    await sync_to_async(services.end_call)(call.pk, EndReason.BYE, "test")
    await both(lambda calls, _: calls == [] or pytest.fail(str(calls)))
    for page in (watcher, auditor):
        await page.disconnect()
