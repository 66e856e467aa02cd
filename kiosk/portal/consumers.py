"""The portal's sockets: the customer's, the agent's and the supervisor's (docs/portal.md).

Thin: each message is parsed by ``kiosk.portal.protocol`` and handed to
``kiosk.portal.services``; media goes to a worker over the channel layer
(``call.offer``, ``media_engine/conversation.py``). A consumer keeps only the facts of its own
socket (which call, which session); the call itself is the database row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from consent.models import EndReason
from kiosk import calls, limits, signaling
from kiosk import services as kiosk_services
from kiosk.consumers import (
    CLOSE_NOT_ENROLLED,
    CLOSE_RATE_LIMITED,
    client_address,
    device_token,
)
from kiosk.dashboard.second_factor import needs_second_factor, session_verified
from kiosk.ice_policy import policy_from_settings
from kiosk.portal import notify, protocol, selectors, services
from kiosk.portal.models import CallStatus, Service
from media_engine import protocol as media

logger = logging.getLogger(__name__)

CLOSE_REFUSED = 4403
CLOSE_TOO_MANY_ERRORS = 4400
# The kiosk socket's own codes where the refusal is the kiosk's (kiosk/consumers.py).
CLOSE_CODES = {"not_enrolled": CLOSE_NOT_ENROLLED, "rate_limited": CLOSE_RATE_LIMITED}
MAX_BAD_MESSAGES = 20
KEEPALIVE_S = 10.0
db = database_sync_to_async


def kiosk_allowed(scope: dict, slug: str) -> kiosk_services.Admission:
    """Whether this socket may speak for kiosk ``slug``: the kiosk socket's own admission
    (rate limits, the kiosk, its enrolled device's cookie), never a copy of it."""
    return kiosk_services.admit_kiosk_socket(slug, device_token(scope, slug), client_address(scope))


def link_allowed(scope: dict, token: str) -> bool:
    """A one-time link's socket: rate-limited per link and per address like a kiosk's."""
    return limits.allow("connect", "link:" + token[:64], client_address(scope))


def staff_allowed(scope: dict, user: Any, permission: str) -> bool:
    """The permission, and the second factor (TOTP) wherever the user needs one."""
    if user is None or not user.is_authenticated or not user.has_perm(permission):
        return False
    return not needs_second_factor(user) or session_verified(user, scope.get("session"))


def screened_offer(sdp: str) -> str:
    """The offer's SDP after the kiosk's candidate screening and its candidate limit."""
    try:
        sdp, _count = signaling.screen_offer_candidates(sdp, policy_from_settings())
    except signaling.SignalingError as exc:
        raise protocol.PortalProtocolError(exc.code, exc.message) from None
    return sdp


class PortalSocket(AsyncWebsocketConsumer):
    """What the three sockets share: parsing, errors, the end of a call, media replies."""

    parsers: dict = {}
    role = ""

    async def connect(self) -> None:
        self.call_id: str | None = None
        self.session_id: str | None = None
        self.bad_messages = 0
        self.ended = False
        self.tasks: list[asyncio.Task] = []
        await self.accept()
        try:
            await self.open()
        except Exception:
            logger.exception("portal %s socket could not open", self.role)
            await self.send_message(protocol.error("internal"))
            await self.close(code=1011)

    async def open(self) -> None:
        raise NotImplementedError

    async def send_message(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):
            await self.send(text_data=protocol.encode(message))

    async def refuse(self, code: str, message: str | None = None, close: bool = False) -> None:
        await self.send_message(protocol.error(code, message))
        if close:
            await self.close(code=CLOSE_CODES.get(code, CLOSE_REFUSED))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            message = protocol.parse(
                text_data if text_data is not None else bytes_data, self.parsers
            )
            await self.handle(message)
        except (protocol.PortalProtocolError, services.PortalError) as exc:
            self.bad_messages += 1
            await self.refuse(exc.code, exc.message)
            if self.bad_messages >= MAX_BAD_MESSAGES:
                await self.send_message(protocol.error("too_many_errors"))
                await self.close(code=CLOSE_TOO_MANY_ERRORS)
        except Exception:
            logger.exception("portal %s socket failed on a message", self.role)
            await self.send_message(protocol.error("internal"))

    async def handle(self, message: Any) -> None:
        raise NotImplementedError

    async def end_call(self, reason: str, detail: str = "", actor: Any = None) -> None:
        if self.call_id is not None:
            await db(services.end_call)(self.call_id, reason, detail, actor=actor)

    async def disconnect(self, code: int) -> None:
        for task in self.tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await self.channel_layer.group_discard(notify.QUEUE_GROUP, self.channel_name)

    def mine(self, event: dict) -> bool:
        return self.call_id is not None and event.get("call_id") == self.call_id

    # --- from the media worker (channel-layer messages) -------------------------------------
    async def media_state(self, event: dict) -> None:
        if event.get("session_id") == self.session_id and not self.ended:
            await self.send_message({"type": "state", "state": event.get("state")})

    async def media_stats(self, event: dict) -> None:
        if event.get("session_id") == self.session_id and not self.ended:
            await self.send_message({"type": "stats", "stats": event.get("stats") or {}})

    async def media_refused(self, event: dict) -> None:
        if event.get("session_id") != self.session_id or self.ended:
            return
        await self.send_message(protocol.error("refused", str(event.get("message", ""))[:300]))
        await self.end_call(EndReason.ERROR, f"media refused: {event.get('code')}")

    async def media_ended(self, event: dict) -> None:
        if event.get("session_id") != self.session_id:
            return
        reason = str(event.get("reason") or EndReason.ERROR)
        reason = reason if reason in EndReason.values else EndReason.ERROR
        await self.end_call(reason, str(event.get("detail", ""))[:300])
        await self.show_end(reason)

    async def portal_ended(self, event: dict) -> None:
        if self.mine(event):
            await self.show_end(str(event.get("reason", "")))

    async def show_end(self, reason: str) -> None:
        if not self.ended:
            self.ended = True
            await self.send_message({"type": "ended", "reason": reason})
            await self.after_end()

    async def after_end(self) -> None:
        """What this socket does once its call is over."""


class CustomerConsumer(PortalSocket):
    """A customer at a kiosk (``/ws/kiosk/<slug>/portal/``) or at home (a one-time link)."""

    parsers = protocol.CUSTOMER_PARSERS
    role = "customer"

    async def open(self) -> None:
        kwargs = self.scope["url_route"]["kwargs"]
        self.token: str | None = kwargs.get("token")
        self.accepted = False
        self.offered = False
        self.claimed = False
        self.kiosk = None
        self.device_id: int | None = None
        if self.token is not None:
            if not await db(link_allowed)(self.scope, self.token):
                await self.refuse("rate_limited", close=True)
                return
            usable = await db(services.home_link_usable)(self.token)
            self.kiosk = await db(services.home_kiosk)() if usable else None
            if self.kiosk is None:
                await self.refuse("link_invalid", close=True)
                return
        else:
            admission = await db(kiosk_allowed)(self.scope, kwargs.get("slug", ""))
            if admission.error:
                await self.refuse(admission.error, close=True)
                return
            self.kiosk, self.device_id = admission.kiosk, admission.device_id
        await self.send_message(await db(customer_hello)())

    @property
    def at_kiosk(self) -> bool:
        return self.token is None

    async def handle(self, message: Any) -> None:
        if self.kiosk is None:
            return
        match message:
            case protocol.Join():
                await self.on_join(message)
            case protocol.Resume():
                await self.on_resume(message)
            case protocol.Offer():
                await self.on_offer(message)
            case protocol.Bye():
                await self.end_call(EndReason.BYE, message.reason or "customer")
            case protocol.Withdraw():
                if self.call_id is not None:
                    await db(services.withdraw)(self.call_id)

    async def on_join(self, message: protocol.Join) -> None:
        if self.call_id is not None:
            raise protocol.PortalProtocolError("already_queued")
        if self.at_kiosk:
            refusal = await db(kiosk_services.admit_visit)(
                self.kiosk, self.device_id, client_address(self.scope)
            )
            if refusal:
                raise protocol.PortalProtocolError(refusal)
        else:
            await db(services.redeem_home_link)(self.token)
        call = await db(services.join_queue)(
            self.kiosk,
            service=message.service,
            language=message.language,
            text_sha256=message.text_sha256,
            blur=message.blur,
            customer_channel=self.channel_name,
            from_home=self.token is not None,
        )
        await self.follow(call)

    async def on_resume(self, message: protocol.Resume) -> None:
        if self.call_id is not None:
            raise protocol.PortalProtocolError("already_queued")
        call = await db(selectors.get_call)(message.call_id)
        if call is None or call.session.kiosk_id != self.kiosk.pk:
            raise protocol.PortalProtocolError("not_in_call")
        if call.status != CallStatus.WAITING:
            raise protocol.PortalProtocolError("not_in_call", "that call is over; join again")
        await db(services.touch)(call.pk, self.channel_name)
        await self.follow(call)

    async def follow(self, call: Any) -> None:
        self.call_id, self.session_id = str(call.pk), str(call.session_id)
        self.call = call
        await self.channel_layer.group_add(notify.QUEUE_GROUP, self.channel_name)
        await self.send_queued()
        self.tasks.append(asyncio.ensure_future(self.keepalive()))

    async def send_queued(self) -> None:
        position = await db(selectors.queue_position)(self.call)
        await self.send_message(
            {
                "type": "queued",
                "call_id": self.call_id,
                "session_id": self.session_id,
                "service": self.call.service,
                "position": position,
            }
        )

    async def keepalive(self) -> None:
        while not self.ended:
            await asyncio.sleep(KEEPALIVE_S)
            await db(services.touch)(self.call_id)
            if self.claimed:
                await db(calls.beat)(self.kiosk.pk, self.session_id)

    async def portal_queue_changed(self, event: dict) -> None:
        if self.call_id is not None and not self.accepted and not self.ended:
            await self.send_queued()

    async def portal_accepted(self, event: dict) -> None:
        if self.mine(event) and not self.ended:
            self.accepted = True
            await self.send_message({"type": "accepted", "agent": event.get("agent", "")})

    async def on_offer(self, message: protocol.Offer) -> None:
        if not self.accepted or self.ended:
            raise protocol.PortalProtocolError("not_in_call", "wait until an agent accepts")
        if self.offered:
            raise protocol.PortalProtocolError("duplicate_offer")
        sdp = screened_offer(message.sdp)
        self.offered = True
        if self.at_kiosk:
            refusal = await db(kiosk_services.admit_call)(
                self.kiosk, self.device_id, self.session_id
            )
            if refusal:
                await self.refuse(refusal)
                reason = EndReason.OPERATOR if refusal == "not_enrolled" else EndReason.BUSY
                await self.end_call(reason, f"kiosk refused the call: {refusal}")
                return
            self.claimed = True
        call = await db(selectors.get_call)(self.call_id)
        if settings.MEDIA_ENGINE_IN_PROCESS:
            from kiosk.consumers import start_embedded_media_engine

            await start_embedded_media_engine()
        await self.channel_layer.send(
            media.OFFERS_CHANNEL, call_offer(call, sdp, self.channel_name)
        )
        await self.send_message({"type": "state", "state": "connecting"})

    async def media_answer(self, event: dict) -> None:
        if event.get("session_id") != self.session_id or self.ended:
            return
        await db(services.record_media)(
            self.call_id,
            worker=str(event.get("worker", "")),
            control_channel=str(event.get("control_channel", "")),
        )
        await self.send_message({"type": "answer", "sdp": event.get("sdp"), "sdp_type": "answer"})

    async def disconnect(self, code: int) -> None:
        await super().disconnect(code)
        # A waiting customer keeps their place for PORTAL_QUEUE_STALE_S (a daphne restart);
        # a call that was accepted has lost its customer.
        if self.call_id is not None and not self.ended and getattr(self, "accepted", False):
            await self.end_call(EndReason.DISCONNECT, f"customer socket closed ({code})")
        await self.release_kiosk()

    async def after_end(self) -> None:
        await self.release_kiosk()

    async def release_kiosk(self) -> None:
        """Free the kiosk's one call (kiosk/calls.py) when this socket held it."""
        if getattr(self, "claimed", False):
            self.claimed = False
            with contextlib.suppress(Exception):
                await db(calls.release)(self.kiosk.pk, self.session_id)


def customer_hello() -> dict[str, Any]:
    texts = [selectors.call_text(language) for language in ("zh-hans", "en")]
    return {
        "type": "hello",
        "protocol": protocol.PROTOCOL_VERSION,
        "services": [{"name": value, "label": label} for value, label in Service.choices],
        "consent_texts": [
            {
                "language": t.language,
                "version": t.version,
                "sha256": t.sha256,
                "title": t.title,
                "body": t.body,
            }
            for t in texts
            if t is not None
        ],
        "ice_servers": settings.ICE_SERVERS,
    }


def call_offer(call: Any, sdp: str, reply_channel: str) -> dict[str, Any]:
    """The customer's ``call.offer`` for the media workers (media_engine/conversation.py)."""
    return {
        "type": "call.offer",
        "role": "customer",
        "call_id": str(call.pk),
        "session_id": str(call.session_id),
        "kiosk": call.session.kiosk.slug,
        "engine": call.engine,
        "identity_id": call.identity_id,
        "blur": call.blur_customer,
        "sdp": sdp,
        "sdp_type": "offer",
        "reply_channel": reply_channel,
        "deadline": time.time() + media.OFFER_TIMEOUT_S,
        "ice_servers": settings.ICE_SERVERS,
        "audio_extra_ms": settings.PORTAL_AUDIO_EXTRA_MS,
        "lipsync": settings.PORTAL_LIPSYNC,
    }


class AgentConsumer(PortalSocket):
    """An agent's desk: the queue, one call at a time (``/ws/portal/agent/``)."""

    parsers = protocol.AGENT_PARSERS
    role = "agent"

    async def open(self) -> None:
        self.user = self.scope.get("user")
        self.control: str | None = None
        self.pending_offer: str | None = None
        self.offer_sent = False
        if self.user is None or not self.user.is_authenticated:
            await self.refuse("login_required", close=True)
            return
        if not await db(staff_allowed)(self.scope, self.user, "portal.take_calls"):
            await self.refuse("not_agent", close=True)
            self.user = None
            return
        await self.channel_layer.group_add(notify.QUEUE_GROUP, self.channel_name)
        profile = await db(selectors.agent_profile)(self.user)
        await self.send_message(
            {
                "type": "hello",
                "protocol": protocol.PROTOCOL_VERSION,
                "agent": profile.display_name if profile else self.user.get_username(),
                "queue": await db(selectors.queue_snapshot)(),
                "ice_servers": settings.ICE_SERVERS,
            }
        )

    async def handle(self, message: Any) -> None:
        if self.user is None or not self.user.is_authenticated:
            return
        match message:
            case protocol.Accept():
                await self.on_accept(message)
            case protocol.Offer():
                await self.on_offer(message)
            case protocol.PreviewOffer():
                await self.on_preview_offer(message)
            case protocol.Bye():
                await self.end_call(EndReason.BYE, message.reason or "agent", actor=self.user)
            case protocol.Supervisor():
                if self.call_id is None:
                    raise protocol.PortalProtocolError("not_in_call")
                await db(services.allow_supervisor)(self.call_id, self.user, message.allowed)
                await self.send_message({"type": "supervisor", "allowed": message.allowed})
            case protocol.HomeLinkRequest():
                token = await db(services.create_home_link)(self.user, message.service)
                await self.send_message({"type": "home_link", "path": f"/portal/link/{token}/"})

    async def on_accept(self, message: protocol.Accept) -> None:
        if self.call_id is not None and not self.ended:
            raise protocol.PortalProtocolError("already_queued", "end this call first")
        call = await db(services.accept_call)(
            self.user,
            agent_channel=self.channel_name,
            call_id=message.call_id,
            service=message.service,
        )
        self.call_id, self.session_id = str(call.pk), str(call.session_id)
        self.ended, self.control, self.pending_offer, self.offer_sent = False, None, None, False
        await self.send_message(
            {
                "type": "accepted",
                "call_id": self.call_id,
                "service": call.service,
                "blur": call.blur_customer,
                "language": call.session.consent_language,
            }
        )

    async def on_offer(self, message: protocol.Offer) -> None:
        if self.call_id is None or self.ended:
            raise protocol.PortalProtocolError("not_in_call")
        if self.pending_offer is not None:
            raise protocol.PortalProtocolError("duplicate_offer")
        self.pending_offer = screened_offer(message.sdp)
        await self.send_offer()

    async def portal_media_ready(self, event: dict) -> None:
        if self.mine(event) and not self.ended:
            self.control = str(event.get("control", ""))
            await self.send_message({"type": "customer_connected"})
            await self.send_offer()

    async def send_offer(self) -> None:
        if self.control and self.pending_offer and not self.offer_sent:
            self.offer_sent = True
            sdp = self.pending_offer
            await self.channel_layer.send(
                self.control,
                {
                    "type": "call.offer",
                    "role": "agent",
                    "session_id": self.session_id,
                    "sdp": sdp,
                    "reply_channel": self.channel_name,
                    "ice_servers": settings.ICE_SERVERS,
                },
            )

    async def on_preview_offer(self, message: protocol.PreviewOffer) -> None:
        if self.call_id is None or not self.control or not self.offer_sent:
            raise protocol.PortalProtocolError("not_in_call", "send the call's offer first")
        await self.channel_layer.send(
            self.control,
            {
                "type": "call.offer",
                "role": "preview",
                "session_id": self.session_id,
                "sdp": screened_offer(message.sdp),
                "reply_channel": self.channel_name,
                "ice_servers": settings.ICE_SERVERS,
            },
        )

    async def media_answer(self, event: dict) -> None:
        if event.get("session_id") == self.session_id and not self.ended:
            kind = "preview_answer" if event.get("role") == "preview" else "answer"
            await self.send_message({"type": kind, "sdp": event.get("sdp"), "sdp_type": "answer"})

    async def media_ended(self, event: dict) -> None:
        if event.get("role") != "preview":  # the preview ends with the call, never alone
            await super().media_ended(event)

    async def portal_queue_changed(self, event: dict) -> None:
        await self.send_message({"type": "queue", "queue": await db(selectors.queue_snapshot)()})

    async def after_end(self) -> None:
        # ready for the next customer
        self.call_id = self.session_id = None
        self.ended = False
        await self.portal_queue_changed({})

    async def show_end(self, reason: str) -> None:
        call_id = self.call_id
        if call_id is not None:
            await self.send_message({"type": "ended", "reason": reason, "call_id": call_id})
            await self.after_end()

    async def disconnect(self, code: int) -> None:
        await super().disconnect(code)
        if self.call_id is not None:
            await self.end_call(EndReason.DISCONNECT, f"agent socket closed ({code})")


class SupervisorConsumer(PortalSocket):
    """A supervisor watching one call (``/ws/portal/supervise/<call_id>/``), receive-only."""

    parsers = protocol.SUPERVISOR_PARSERS
    role = "supervisor"

    async def open(self) -> None:
        self.user = self.scope.get("user")
        if self.user is None or not self.user.is_authenticated:
            await self.refuse("login_required", close=True)
            return
        if not await db(staff_allowed)(self.scope, self.user, "portal.supervise_calls"):
            await self.refuse("not_agent", close=True)
            self.user = None
            return
        self.call_id = str(self.scope["url_route"]["kwargs"]["call_id"])
        call = await db(selectors.get_call)(self.call_id)
        if call is None:
            await self.refuse("not_in_call", close=True)
            return
        self.session_id = str(call.session_id)
        await self.send_message(
            {
                "type": "hello",
                "protocol": protocol.PROTOCOL_VERSION,
                "ice_servers": settings.ICE_SERVERS,
            }
        )

    async def handle(self, message: Any) -> None:
        match message:
            case protocol.Offer():
                sdp = screened_offer(message.sdp)
                call = await db(services.supervisor_joins)(self.call_id, self.user)
                await self.channel_layer.send(
                    call.control_channel,
                    {
                        "type": "call.offer",
                        "role": "supervisor",
                        "session_id": self.session_id,
                        "sdp": sdp,
                        "reply_channel": self.channel_name,
                        "ice_servers": settings.ICE_SERVERS,
                    },
                )
            case protocol.Bye():
                await self.close()

    async def media_answer(self, event: dict) -> None:
        if event.get("session_id") == self.session_id:
            await self.send_message(
                {"type": "answer", "sdp": event.get("sdp"), "sdp_type": "answer"}
            )

    async def media_ended(self, event: dict) -> None:
        # the supervisor's leaving never ends the call; the call's end ends the watching
        if event.get("session_id") == self.session_id:
            await self.send_message({"type": "ended", "reason": event.get("reason", "")})
            self.ended = True

    async def media_refused(self, event: dict) -> None:
        if event.get("session_id") == self.session_id:
            await self.send_message(protocol.error("not_allowed", str(event.get("message", ""))))
