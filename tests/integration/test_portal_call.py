"""A portal call through the real service: daphne (embedded media engine) on the test
database, a customer and an agent as real aiortc peers over real WebSockets.

Each receives the other's media; every frame the customer receives carries the label and
none carries the agent's camera stamp (the raw camera never reaches the customer); the agent
ending, the customer ending, withdrawal and the fusion switch each do what docs/portal.md says.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import Client

from consent.audit_models import AuditEvent, AuditOutbox
from consent.models import ConsentGrant, EndReason, Identity, KioskSession
from kiosk.models import FusionSwitch, Kiosk
from kiosk.portal import services
from kiosk.portal.models import AgentProfile, PortalCall
from kiosk.provenance.services import verify_media
from kiosk.switch import disable_fusion
from tests.browser.conftest import ensure_consent_texts
from tests.conftest import child_env, embedded_service_env
from tests.dashboard_support import PASSWORD, login, staff_user
from tests.provenance.support import png
from tests.support.enrolment import cookie as device_cookie
from tests.support.enrolment import enrol
from tests.support.loopclient import StampedCamera
from tests.support.portalclient import Peer, PreviewPeer, Socket, ToneMicrophone, wait_until
from tests.support.servers import running, start_daphne, wait_for_other_connections_to_close

pytestmark = [pytest.mark.timeout(240)]


def make_agent(username: str = "agent-ann") -> str:
    """An agent driving the shipped synthetic avatar; returns a logged-in session cookie."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    services.ensure_portal_setup()
    avatar, _ = Identity.objects.get_or_create(
        asset="avatar_default",
        defaults={"name": "Default avatar", "kind": "avatar", "synthetic": True},
    )
    user = get_user_model().objects.create_user(username=username, password=PASSWORD)
    user.groups.add(Group.objects.get(name="agent"))
    AgentProfile.objects.create(user=user, display_name="Ann", engine="avatar", identity=avatar)
    client = Client()
    login(client, user)  # the agent can act: password and second factor
    return client.cookies["sessionid"].value


def kiosk_device(slug: str = "demo") -> str:
    """The enrolled kiosk device's cookie (``name=token``): the portal's customer side at a
    kiosk is for that device only."""
    return device_cookie(slug, enrol(slug))


@pytest.fixture
def portal_server(transactional_db, settings):
    ensure_consent_texts()
    services.ensure_portal_setup()
    Kiosk.objects.get_or_create(slug="demo", defaults={"name": "Demo kiosk"})
    process, base = start_daphne(embedded_service_env(settings.DATABASES["default"]))
    with running([process]):
        yield base
        sys.stderr.write(f"----- daphne output -----\n{process.output()[-8000:]}\n")  # on failure
    wait_for_other_connections_to_close(settings.DATABASES["default"])


class Call:
    """Both parties of one call, set up through the documented messages."""

    def __init__(self, customer: Socket, agent: Socket) -> None:
        self.customer, self.agent = customer, agent
        self.customer_peer = Peer(StampedCamera(320, 240, 15), ToneMicrophone(440.0))
        self.agent_peer = Peer(StampedCamera(320, 240, 15), ToneMicrophone(660.0))
        self.preview = PreviewPeer()

    async def start(self, service: str = "cards") -> dict:
        sha = self.customer.hello["consent_texts"][1]["sha256"]
        await self.customer.send(
            {"type": "join", "service": service, "language": "en", "text_sha256": sha}
        )
        queued = await self.customer.expect("queued")
        assert queued["position"] == 1
        await self.agent.expect("queue")
        await self.agent.send({"type": "accept", "service": service})
        accepted = await self.agent.expect("accepted")
        await self.customer.expect("accepted")
        await self.customer.send({"type": "offer", "sdp": await self.customer_peer.offer()})
        await self.customer_peer.accept((await self.customer.expect("answer"))["sdp"])
        await self.agent.send({"type": "offer", "sdp": await self.agent_peer.offer()})
        await self.agent_peer.accept((await self.agent.expect("answer"))["sdp"])
        await self.agent.send({"type": "preview_offer", "sdp": await self.preview.offer()})
        await self.preview.accept((await self.agent.expect("preview_answer"))["sdp"])
        return {**queued, **accepted}

    async def media_flows(self) -> None:
        await wait_until(
            lambda: self.customer_peer.videos and self.customer_peer.videos[0].frames >= 15,
            60,
            "the agent's digital human at the customer",
        )
        await wait_until(
            lambda: self.agent_peer.videos and self.agent_peer.videos[0].stamped >= 15,
            60,
            "the customer's camera at the agent",
        )
        await wait_until(
            lambda: self.customer_peer.audio and self.customer_peer.audio.loud >= 25,
            30,
            "the agent's voice at the customer",
        )
        await wait_until(
            lambda: self.agent_peer.audio and self.agent_peer.audio.loud >= 25,
            30,
            "the customer's voice at the agent",
        )

    async def close(self) -> None:
        await self.customer_peer.close()
        await self.agent_peer.close()
        await self.preview.close()


async def open_call(base: str, cookie: str, service: str = "cards"):
    device = await sync_to_async(kiosk_device)()
    customer_cm = Socket.open(base, "/ws/kiosk/demo/portal/", device=device)
    agent_cm = Socket.open(base, "/ws/portal/agent/", cookie)
    customer = await customer_cm.__aenter__()
    agent = await agent_cm.__aenter__()
    call = Call(customer, agent)
    info = await call.start(service)

    async def close() -> None:
        await call.close()
        await customer_cm.__aexit__(None, None, None)
        await agent_cm.__aexit__(None, None, None)
        await sync_to_async(connections.close_all)()  # the ORM thread's connection

    return call, info, close


def call_row(call_id: str) -> PortalCall:
    return PortalCall.objects.select_related("session").get(pk=call_id)


def audit_actions(session_id) -> set[str]:
    """The session's audit events, relayed (the trail) or not yet (the outbox)."""
    relayed = AuditEvent.objects.filter(session_id=session_id).values_list("action", flat=True)
    waiting = AuditOutbox.objects.filter(session_id=session_id).values_list("action", flat=True)
    return {*relayed, *waiting}


@pytest.mark.django_db(transaction=True)
async def test_a_call_carries_both_sides_and_the_customer_sees_only_the_labelled_digital_human(
    portal_server,
):
    cookie = await sync_to_async(make_agent)()
    call, info, close = await open_call(portal_server, cookie)
    try:
        await call.media_flows()
        seen = call.customer_peer.videos[0]
        assert seen.labelled == seen.frames, "every frame the customer gets carries the label"
        assert seen.stamped == 0, "no frame of the agent's raw camera reaches the customer"
        await wait_until(
            lambda: call.preview.video and call.preview.video.frames >= 5, 30, "the agent's preview"
        )
        preview = call.preview.video
        assert preview.stamped == 0 and preview.labelled == preview.frames
        assert call.agent_peer.videos[0].labelled == 0, "the customer is shown as they are"
        row = await sync_to_async(call_row)(info["call_id"])
        found = await sync_to_async(verify_media)(
            png(seen.last_bgr), actor="system:test", name="screenshot.png"
        )
        assert found["ai_generated"] is True, "the digital human carries the invisible mark"
        assert found["session_id"] == str(row.session_id), "and names the call's session"

        await call.agent.send({"type": "bye"})
        ended = await call.customer.expect("ended")
        assert ended["reason"] == EndReason.BYE
        await call.agent.expect("ended")
        row = await sync_to_async(call_row)(info["call_id"])
        assert row.status == "ended" and row.end_reason == EndReason.BYE
        session = await sync_to_async(KioskSession.objects.get)(pk=row.session_id)
        assert session.ended_at is not None
        actions = await sync_to_async(audit_actions)(row.session_id)
        for action in (
            "consent.granted",
            "portal.queue_joined",
            "portal.call_accepted",
            "portal.call_started",
            "portal.call_ended",
        ):
            assert action in actions, (action, actions)
    finally:
        await close()


@pytest.mark.django_db(transaction=True)
async def test_withdrawing_consent_ends_the_call_at_once(portal_server):
    cookie = await sync_to_async(make_agent)()
    call, info, close = await open_call(portal_server, cookie, "accounts")
    try:
        await wait_until(
            lambda: call.agent_peer.videos and call.agent_peer.videos[0].frames > 3,
            60,
            "the customer at the agent",
        )
        await call.customer.send({"type": "withdraw"})
        assert (await call.customer.expect("ended"))["reason"] == EndReason.WITHDRAWN
        assert (await call.agent.expect("ended"))["reason"] == EndReason.WITHDRAWN
        row = await sync_to_async(call_row)(info["call_id"])
        grant = await sync_to_async(ConsentGrant.objects.get)(session_id=row.session_id)
        assert grant.withdrawn_at is not None and grant.withdrawal_method == "withdraw_button"
        frames = call.agent_peer.videos[0].frames
        await asyncio.sleep(2.0)
        assert call.agent_peer.videos[0].frames - frames <= 2, "media stopped"
    finally:
        await close()


@pytest.mark.django_db(transaction=True)
async def test_the_switch_pauses_the_agent_to_a_still_and_the_customer_can_end(portal_server):
    cookie = await sync_to_async(make_agent)()
    call, _info, close = await open_call(portal_server, cookie)
    try:
        await call.media_flows()
        operator = await sync_to_async(staff_user)("operator")
        await sync_to_async(disable_fusion)(operator, "portal test")  # the one-click switch
        await call.customer.expect("state", state="paused")
        seen = call.customer_peer.videos[0]
        await wait_until(lambda: seen.paused >= 5, 30, "the paused still at the customer")
        labelled, frames, paused = seen.labelled, seen.frames, seen.paused
        await wait_until(lambda: seen.frames >= frames + 10, 30, "more frames")
        assert seen.labelled == labelled, "paused: no fused frame any more"
        assert seen.paused - paused == seen.frames - frames, "only the still"
        assert seen.stamped == 0

        await call.customer.send({"type": "bye"})
        assert (await call.agent.expect("ended"))["reason"] == EndReason.BYE
        assert (await call.customer.expect("ended"))["reason"] == EndReason.BYE
    finally:
        await sync_to_async(FusionSwitch.objects.update_or_create)(pk=1, defaults={"enabled": True})
        await close()


async def refused_at_open(
    base: str, path: str, cookie: str = "", device: str = ""
) -> tuple[dict, int | None]:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    cookies = [f"sessionid={cookie}"] if cookie else []
    cookies += [device] if device else []
    headers = {"Cookie": "; ".join(cookies)} if cookies else None
    ws_url = base.replace("http://", "ws://", 1) + path
    async with connect(ws_url, origin=base, additional_headers=headers) as socket:
        first = json.loads(await asyncio.wait_for(socket.recv(), 30))
        with contextlib.suppress(ConnectionClosed):
            await asyncio.wait_for(socket.recv(), 30)
        return first, socket.close_code


@pytest.mark.django_db(transaction=True)
async def test_clients_mistakes_get_error_codes_never_a_traceback(portal_server):
    first, code = await refused_at_open(portal_server, "/ws/kiosk/nowhere/portal/")
    assert (first["code"], code) == ("unknown_kiosk", 4403)
    first, code = await refused_at_open(portal_server, "/ws/kiosk/demo/portal/")
    assert (first["code"], code) == ("not_enrolled", 4401)
    bad_device = f"kiosk_device_demo={'x' * 43}"
    first, code = await refused_at_open(portal_server, "/ws/kiosk/demo/portal/", device=bad_device)
    assert (first["code"], code) == ("not_enrolled", 4401)
    first, code = await refused_at_open(portal_server, "/ws/portal/agent/")
    assert (first["code"], code) == ("login_required", 4403)
    password_only = await sync_to_async(password_only_agent)()
    first, code = await refused_at_open(portal_server, "/ws/portal/agent/", password_only)
    assert (first["code"], code) == ("not_agent", 4403)
    first, code = await refused_at_open(portal_server, "/ws/portal/link/made-up-token/")
    assert (first["code"], code) == ("link_invalid", 4403)
    device = await sync_to_async(kiosk_device)()
    async with Socket.open(portal_server, "/ws/kiosk/demo/portal/", device=device) as customer:
        for message, error in [
            ("{not json", "bad_json"),
            ({"type": "offer", "sdp": "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"}, "not_in_call"),
            ({"type": "join", "service": "loans", "language": "en"}, "unknown_service"),
            (
                {"type": "join", "service": "cards", "language": "en", "text_sha256": "0" * 64},
                "consent_outdated",
            ),
            ({"type": "resume", "call_id": "0b5e5f1c-8d2f-4c55-9d2a-2b1f4f0e9a11"}, "not_in_call"),
        ]:
            await customer.send(message)
            assert (await customer.expect("error"))["code"] == error
        await customer.send({"type": "join", "service": "cards", "language": "zh-hans"})
        await customer.expect("queued")
        await customer.send({"type": "join", "service": "cards", "language": "zh-hans"})
        assert (await customer.expect("error"))["code"] == "already_queued"


@pytest.mark.django_db(transaction=True)
async def test_the_queue_survives_a_daphne_restart(transactional_db, settings):
    """A waiting customer keeps their place across a restart: the queue is the database."""
    await sync_to_async(ensure_consent_texts)()
    await sync_to_async(services.ensure_portal_setup)()
    await sync_to_async(Kiosk.objects.get_or_create)(slug="demo", defaults={"name": "Demo"})
    cookie = await sync_to_async(make_agent)()
    device = await sync_to_async(kiosk_device)()
    env = child_env(settings.DATABASES["default"], MEDIA_ENGINE_IN_PROCESS="1", DJANGO_DEBUG="1")
    env.pop("REDIS_URL", None)
    first, base = await sync_to_async(start_daphne)(env)
    with running([first]):
        async with Socket.open(base, "/ws/kiosk/demo/portal/", device=device) as customer:
            await customer.send({"type": "join", "service": "cards", "language": "en"})
            call_id = (await customer.expect("queued"))["call_id"]
    await sync_to_async(first.stop)()
    second, base = await sync_to_async(start_daphne)(env)
    with running([second]):
        async with Socket.open(base, "/ws/kiosk/demo/portal/", device=device) as customer:
            await customer.send({"type": "resume", "call_id": call_id})
            assert (await customer.expect("queued"))["position"] == 1
            async with Socket.open(base, "/ws/portal/agent/", cookie) as agent:
                assert [c["call_id"] for c in agent.hello["queue"]["cards"]] == [call_id]
                await agent.send({"type": "accept", "service": "cards"})
                assert (await agent.expect("accepted"))["call_id"] == call_id
                await customer.expect("accepted")
                await agent.send({"type": "bye"})
                await customer.expect("ended")
    await sync_to_async(wait_for_other_connections_to_close)(settings.DATABASES["default"])
    await sync_to_async(connections.close_all)()


@pytest.mark.django_db(transaction=True)
async def test_a_supervisor_watches_and_listens_only_while_the_agent_allows(portal_server):
    from aiortc import RTCPeerConnection, RTCSessionDescription

    cookie = await sync_to_async(make_agent)()
    boss_cookie = await sync_to_async(make_supervisor)()
    call, info, close = await open_call(portal_server, cookie)
    watcher = RTCPeerConnection()
    try:
        await call.media_flows()
        path = f"/ws/portal/supervise/{info['call_id']}/"
        async with Socket.open(portal_server, path, boss_cookie) as supervisor:
            for kind in ("video", "audio", "video", "audio"):
                watcher.addTransceiver(kind, direction="recvonly")
            tracks: list = []
            watcher.on("track", tracks.append)
            await watcher.setLocalDescription(await watcher.createOffer())
            await supervisor.send({"type": "offer", "sdp": watcher.localDescription.sdp})
            assert (await supervisor.expect("error"))["code"] == "not_allowed"
            await call.agent.send({"type": "supervisor", "allowed": True})
            await call.agent.expect("supervisor", allowed=True)
            await asyncio.sleep(0.5)  # the permission reaches the worker
            await supervisor.send({"type": "offer", "sdp": watcher.localDescription.sdp})
            answer = await supervisor.expect("answer")
            await watcher.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
            await wait_until(lambda: len(tracks) >= 4, 30, "the call's four tracks")
            frame = await asyncio.wait_for(tracks[0].recv(), 30)
            assert frame.width > 0
            await call.agent.send({"type": "supervisor", "allowed": False})
            await supervisor.expect("ended")
        actions = await sync_to_async(audit_actions)(info["session_id"])
        assert {"portal.supervisor_allowed", "portal.supervisor_watched"} <= actions
        assert "portal.supervisor_refused" in actions
    finally:
        await watcher.close()
        await close()


def make_supervisor() -> str:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user(username="boss", password=PASSWORD)
    user.groups.add(Group.objects.get(name="supervisor"))
    client = Client()
    login(client, user)  # the supervisor can act: password and second factor
    return client.cookies["sessionid"].value


def password_only_agent() -> str:
    """An agent logged in with the password but not the second factor."""
    from django.contrib.auth.models import Group

    services.ensure_portal_setup()
    user = staff_user(None, "agent-no-otp")
    user.groups.add(Group.objects.get(name="agent"))
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value
