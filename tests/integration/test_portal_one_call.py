"""One live call per kiosk, through the portal: a kiosk that is already in a call, as a portal
customer or as a kiosk visitor, cannot start a second one (``kiosk_busy``, docs/signaling.md).

The real service as in test_portal_call.py: daphne (embedded media engine) on the test
PostgreSQL database, real WebSockets and real aiortc peers.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from kiosk.models import KioskCall
from kiosk.portal.models import CallStatus, PortalCall
from tests.integration import test_portal_call
from tests.integration.test_portal_call import kiosk_device, make_agent, open_call
from tests.support.kioskclient import CallRefused, SignalingClient
from tests.support.loopclient import KioskPeer
from tests.support.portalclient import Peer, Socket, StampedCamera, ToneMicrophone, wait_until

pytestmark = [pytest.mark.timeout(240)]
portal_server = test_portal_call.portal_server  # the same daphne fixture


def kiosk_call_session() -> str:
    row = KioskCall.objects.filter(kiosk__slug="demo").first()
    return row.session_id if row else ""


def call_status(call_id: str) -> str:
    return PortalCall.objects.get(pk=call_id).status


async def second_portal_customer_is_refused(base: str, agent_cookie: str) -> None:
    """Another customer at the same kiosk: queued and accepted, but the offer gets
    ``kiosk_busy`` and the call ends ``busy`` for both sides."""
    device = await sync_to_async(kiosk_device)()
    async with (
        Socket.open(base, "/ws/kiosk/demo/portal/", device=device) as customer,
        Socket.open(base, "/ws/portal/agent/", agent_cookie) as agent,
    ):
        sha = customer.hello["consent_texts"][1]["sha256"]
        await customer.send(
            {"type": "join", "service": "cards", "language": "en", "text_sha256": sha}
        )
        queued = await customer.expect("queued")
        await agent.send({"type": "accept", "call_id": queued["call_id"]})
        await agent.expect("accepted")
        await customer.expect("accepted")
        peer = Peer(StampedCamera(320, 240, 15), ToneMicrophone(440.0))
        try:
            await customer.send({"type": "offer", "sdp": await peer.offer()})
            refused = await customer.expect("error")
            assert refused["code"] == "kiosk_busy", refused
            assert (await customer.expect("ended"))["reason"] == "busy"
            assert (await agent.expect("ended"))["reason"] == "busy"
            assert not any(m["type"] == "answer" for m in customer.seen)
            assert await sync_to_async(call_status)(queued["call_id"]) == CallStatus.ENDED
        finally:
            await peer.close()


@pytest.mark.django_db(transaction=True)
async def test_a_kiosk_in_a_portal_call_cannot_start_another(portal_server):
    first_agent = await sync_to_async(make_agent)()
    second_agent = await sync_to_async(make_agent)("agent-bob")
    call, info, close = await open_call(portal_server, first_agent)
    try:
        await call.media_flows()
        holder = await sync_to_async(kiosk_call_session)()
        assert holder == str(info["session_id"])  # the portal call holds the kiosk's call
        # The kiosk screen's own visit: refused at its offer.
        async with SignalingClient.connect(portal_server, "demo") as visitor:
            await visitor.consent()
            peer = KioskPeer()
            try:
                with pytest.raises(CallRefused) as refused:
                    await visitor.offer(await peer.offer())
                assert refused.value.message.get("code") == "kiosk_busy", refused.value.message
            finally:
                await peer.close()
        # A second portal customer at the same kiosk: refused at its offer too.
        await second_portal_customer_is_refused(portal_server, second_agent)
        # The first call was not disturbed: it still holds the kiosk and its media flows.
        assert await sync_to_async(kiosk_call_session)() == holder
        assert await sync_to_async(call_status)(info["call_id"]) == CallStatus.ACCEPTED
        frames = call.customer_peer.videos[0].frames
        await wait_until(lambda: call.customer_peer.videos[0].frames >= frames + 10, 30)
    finally:
        await close()


@pytest.mark.django_db(transaction=True)
async def test_a_kiosk_whose_visitor_is_in_a_call_cannot_start_a_portal_call(portal_server):
    agent_cookie = await sync_to_async(make_agent)()
    async with SignalingClient.connect(portal_server, "demo") as visitor:
        session_id = await visitor.consent()
        peer = KioskPeer()
        try:
            await peer.accept(await visitor.offer(await peer.offer()))
            await asyncio.wait_for(peer.track_arrived.wait(), 30)
            assert await sync_to_async(kiosk_call_session)() == session_id
            await second_portal_customer_is_refused(portal_server, agent_cookie)
            assert await sync_to_async(kiosk_call_session)() == session_id  # still the visit
            await visitor.bye()
            deadline = time.monotonic() + 30
            while await sync_to_async(kiosk_call_session)():  # the visit frees the kiosk
                assert time.monotonic() < deadline, "the kiosk's call was not freed"
                await asyncio.sleep(0.2)
        finally:
            await peer.close()
            await sync_to_async(connections.close_all)()
