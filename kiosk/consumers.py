"""The kiosk page's signaling WebSocket, ``/ws/kiosk/<slug>/`` (docs/signaling.md).

One socket is one visit: hello -> consent -> one offer -> answer -> live -> bye. The rules
of each message live in ``kiosk.signaling``; the records in ``kiosk.services``; this
consumer only routes between the page and a media worker over the channel layer
(``media_engine.protocol``) and keeps the few facts of the visit.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from consent.services import ConsentTextOutdated
from kiosk import calls, devices, logformat, metrics, selectors, services, signaling, turn
from kiosk.cookies import cookie_name
from kiosk.ice_policy import policy_from_settings
from media_engine import capacity, protocol

logger = logging.getLogger(__name__)

# Close codes (4000-4999 are ours): the page shows the error it got just before.
CLOSE_UNKNOWN_KIOSK = 4404
CLOSE_NOT_ENROLLED = 4401
CLOSE_RATE_LIMITED = 4429
CLOSE_TOO_MANY_ERRORS = 4400
CLOSE_SERVER_ERROR = 1011
CLOSE_CODES = {
    "unknown_kiosk": CLOSE_UNKNOWN_KIOSK,
    "not_enrolled": CLOSE_NOT_ENROLLED,
    "rate_limited": CLOSE_RATE_LIMITED,
}
MAX_BAD_MESSAGES = 20
MAX_PENDING_CANDIDATES = 32
CLIENT_STATS_EVERY_S = 0.5  # page stats reach the worker at most this often

# A worker's refusal code -> (the visit's end reason, the page's error code or "").
REFUSALS = {
    "busy": ("busy", ""),
    "expired": ("busy", ""),
    "disabled": ("disabled", ""),
    "no_video": ("error", "no_video"),
    "bad_offer": ("error", "bad_sdp"),
    "engine_unavailable": ("error", "engine_unavailable"),
}


def fusion_allowed_or_off(slug: str) -> bool:
    """The switch, failing closed: an unreadable switch means off."""
    try:
        return selectors.fusion_allowed(slug)
    except Exception:
        logger.exception("fusion switch unreadable for kiosk %s: treated as off", slug)
        return False


def device_token(scope: dict, slug: str) -> str | None:
    """The kiosk's device credential from the handshake's Cookie header, if any."""
    name = cookie_name(slug)
    for key, value in scope.get("headers") or ():
        if key.lower() != b"cookie":
            continue
        for part in value.decode("latin-1").split(";"):
            cookie, _, token = part.strip().partition("=")
            if cookie == name:
                return token.strip('"')
    return None


def client_address(scope: dict) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


if settings.MEDIA_ENGINE_IN_PROCESS:
    # The embedded default: import the media engine (aiortc, PyAV, ONNX Runtime: over a
    # second) when daphne starts, not while the first visitor waits for the page's hello.
    from media_engine import embedded  # noqa: F401


_registry: capacity.Registry | None = None


def worker_registry() -> capacity.Registry | None:
    """The media workers' heartbeats (Redis); ``None`` in the embedded default."""
    global _registry
    if _registry is None and not settings.MEDIA_ENGINE_IN_PROCESS:
        _registry = capacity.registry()
    return _registry


async def cluster_has_room() -> bool:
    """False only when the heartbeats say that no live worker takes offers; an unreadable
    registry says nothing (the workers then answer, or the offer times out as "busy")."""
    registry = worker_registry()
    if registry is None:
        return True
    try:
        return await asyncio.wait_for(registry.cluster_has_room(), capacity.HEARTBEAT_TTL_S)
    except Exception as exc:
        logger.info("worker heartbeats unreadable (%s): offering anyway", exc)
        return True


async def room_within(seconds: float) -> bool:
    """Whether a worker has room, waiting up to ``seconds`` (one heartbeat's lifetime) for
    one to say so: a worker just started, or one whose beat came late on a busy host, is
    not yet in the registry; a full cluster is still told "busy" within that time."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not await cluster_has_room():
        if asyncio.get_running_loop().time() >= deadline:
            return False
        await asyncio.sleep(capacity.HEARTBEAT_INTERVAL_S / 2)
    return True


async def worker_gone(worker: str | None) -> bool:
    """True when the worker's heartbeat expired (kill -9); unknown counts as not gone."""
    registry = worker_registry()
    if registry is None or not worker:
        return False
    try:
        return await asyncio.wait_for(registry.gone(worker), capacity.HEARTBEAT_TTL_S)
    except Exception:
        return False


async def start_embedded_media_engine() -> None:
    """In the embedded default the media engine lives in this process; start it once."""
    from consent import periodic
    from media_engine import embedded

    periodic.ensure_started()  # the embedded default's beat (outbox, expiry, checkpoints)
    started = embedded.ensure_started()
    if inspect.isawaitable(started):
        await started


class KioskSignalingConsumer(AsyncWebsocketConsumer):
    # --- the page's side ---------------------------------------------------------------------

    async def connect(self) -> None:
        metrics.watch_loop(asyncio.get_running_loop())
        self.slug: str = self.scope["url_route"]["kwargs"]["slug"]
        self.kiosk = None
        self.session_id: str | None = None
        self.consent_given = False
        self.offered = False
        self.claimed = False
        self.ended = False
        self.control_channel: str | None = None
        self.worker: str | None = None
        self.pending_candidates: list[dict | None] = []
        self.candidates = 0
        self.last_client_stats = 0.0
        self.bad_messages = 0
        self.last_worker_message = 0.0
        self.offer_timer: asyncio.Task | None = None
        self.watchdog: asyncio.Task | None = None
        self.device_id: int | None = None
        self.in_group = False
        self.address = client_address(self.scope)
        self.group = devices.kiosk_group(self.slug)
        self.policy = policy_from_settings()
        self.last_beat = 0.0
        await self.accept()
        token = device_token(self.scope, self.slug)
        try:
            admission = await database_sync_to_async(services.admit_kiosk_socket)(
                self.slug, token, self.address
            )
        except Exception:
            logger.exception("could not admit a socket for kiosk %s", self.slug)
            await self.send_message(signaling.error("internal", "The kiosk cannot be served now."))
            await self.close(code=CLOSE_SERVER_ERROR)
            return
        if admission.error:
            await self.turn_away(admission.error)
            return
        self.device_id = admission.device_id
        await self.channel_layer.group_add(self.group, self.channel_name)
        self.in_group = True
        self.kiosk = admission.kiosk
        if settings.MEDIA_ENGINE_IN_PROCESS:
            # Warm the embedded media engine while the visitor reads the consent text.
            try:
                await start_embedded_media_engine()
            except Exception:
                logger.exception("embedded media engine did not start (retried at the offer)")
        ice_servers = turn.ice_servers_for_kiosk(self.slug)
        await self.send_message(signaling.hello(ice_servers=ice_servers, **admission.greeting))

    async def turn_away(self, code: str) -> None:
        """Refuse the socket before anything about the kiosk is said (no hello)."""
        message = None
        if code == "unknown_kiosk":
            message = f"There is no kiosk named {self.slug[:64]!r}."
        await self.send_message(signaling.error(code, message))
        await self.close(code=CLOSE_CODES.get(code, CLOSE_TOO_MANY_ERRORS))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.kiosk is None:
            return
        try:
            message = signaling.parse_client_message(
                text_data if text_data is not None else bytes_data
            )
            await self.handle(message)
        except signaling.SignalingError as exc:
            await self.refuse(exc)
        except Exception:
            logger.exception("signaling failed for kiosk %s session %s", self.slug, self.session_id)
            await self.refuse(signaling.SignalingError("internal"))

    async def refuse(self, exc: signaling.SignalingError) -> None:
        self.bad_messages += 1
        await self.send_message(signaling.error(exc.code, exc.message))
        if self.bad_messages >= MAX_BAD_MESSAGES:
            await self.send_message(signaling.error("too_many_errors"))
            await self.close(code=CLOSE_TOO_MANY_ERRORS)

    async def handle(self, message: signaling.ClientMessage) -> None:
        match message:
            case signaling.Consent():
                await self.on_consent(message)
            case signaling.Offer():
                await self.on_offer(message)
            case signaling.Candidate():
                await self.on_candidate(message)
            case signaling.Bye():
                await self.on_bye(message)
            case signaling.Withdraw():
                await self.on_withdraw()
            case signaling.Stats():
                await self.on_stats(message)

    async def on_consent(self, message: signaling.Consent) -> None:
        if self.session_id is not None:
            raise signaling.SignalingError("consent_already_given")
        refusal = await database_sync_to_async(services.admit_visit)(
            self.kiosk, self.device_id, self.address
        )
        if refusal:
            await self.turn_away(refusal)
            return
        try:
            session = await database_sync_to_async(services.begin_kiosk_session)(
                self.kiosk,
                consent_given=message.given,
                language=message.language,
                text_sha256=message.text_sha256,
            )
        except ConsentTextOutdated as exc:
            raise signaling.SignalingError("consent_outdated", str(exc)) from None
        self.session_id = str(session.pk)
        logformat.current_session.set(self.session_id)
        self.consent_given = message.given
        await self.send_message(signaling.consent_ok(self.session_id, given=message.given))

    async def on_offer(self, message: signaling.Offer) -> None:
        if self.session_id is None or not self.consent_given:
            raise signaling.SignalingError("consent_required")
        if self.offered:
            raise signaling.SignalingError("duplicate_offer")
        sdp, self.candidates = signaling.screen_offer_candidates(message.sdp, self.policy)
        self.offered = True
        refusal = await database_sync_to_async(services.admit_call)(
            self.kiosk, self.device_id, self.session_id
        )
        if refusal == "not_enrolled":
            await self.end("operator", "kiosk device credential revoked", tell_worker=False)
            await self.turn_away(refusal)
            return
        if refusal:
            self.claimed = False
            await self.send_message(signaling.error(refusal))
            await self.end("busy", "this kiosk already has a live call", tell_worker=False)
            return
        self.claimed = True
        if not await database_sync_to_async(fusion_allowed_or_off)(self.slug):
            await self.end("disabled", "face fusion is switched off", tell_worker=False)
            return
        if settings.MEDIA_ENGINE_IN_PROCESS:
            try:
                await start_embedded_media_engine()
            except Exception as exc:
                logger.exception("embedded media engine did not start")
                await self.send_message(signaling.error("engine_unavailable"))
                await self.end("error", f"media engine unavailable: {exc}"[:500], False)
                return
        if not await room_within(capacity.HEARTBEAT_TTL_S):
            metrics.refused("busy")
            await self.end("busy", "no media worker has room (measured)", tell_worker=False)
            return
        await self.send_message(signaling.state("connecting"))
        try:
            await self.send_offer(sdp)
        except Exception as exc:
            logger.exception("could not hand the offer to the media workers")
            await self.send_message(signaling.error("engine_unavailable"))
            await self.end("error", f"channel layer unavailable: {exc}"[:500], False)
            return
        self.offer_timer = asyncio.create_task(self.wait_for_answer())

    async def send_offer(self, sdp: str) -> None:
        await self.channel_layer.send(
            protocol.OFFERS_CHANNEL,
            {
                "type": "media.offer",
                "session_id": self.session_id,
                "kiosk": self.slug,
                "engine": self.kiosk.engine,
                "identity_id": self.kiosk.identity_id,
                "sdp": sdp,
                "sdp_type": "offer",
                "reply_channel": self.channel_name,
                "deadline": time.time() + protocol.OFFER_TIMEOUT_S,
                "ice_servers": settings.ICE_SERVERS,
            },
        )

    async def on_candidate(self, message: signaling.Candidate) -> None:
        if not self.offered:
            raise signaling.SignalingError("no_offer")
        if self.ended:
            return
        self.candidates += 1
        if self.candidates > signaling.MAX_CANDIDATES:
            raise signaling.SignalingError("too_many_candidates")
        if not signaling.screen_candidate(message.candidate, self.policy):
            return  # outside the kiosk networks: counted, never handed to the worker
        if self.control_channel is None:
            if len(self.pending_candidates) >= MAX_PENDING_CANDIDATES:
                raise signaling.SignalingError("bad_field", "Too many candidates before answer.")
            self.pending_candidates.append(message.candidate)
            return
        await self.to_worker("session.candidate", candidate=message.candidate)

    async def on_bye(self, message: signaling.Bye) -> None:
        if self.session_id is None:
            await self.send_message(signaling.state("stopped", "bye"))
            return
        await self.end("bye", message.reason, tell_worker=True)

    async def on_withdraw(self) -> None:
        """Withdrawal is as easy as giving: the worker stops the session at once (the same
        ``session.bye`` as Stop), then the grant is closed and audited."""
        if self.session_id is None:
            await self.send_message(signaling.state("stopped", "withdrawn"))
            return
        await self.end("withdrawn", "withdraw_button", tell_worker=True)

    async def on_stats(self, message: signaling.Stats) -> None:
        if self.control_channel is None or self.ended:
            return
        now = time.monotonic()
        if now - self.last_client_stats < CLIENT_STATS_EVERY_S:
            return  # a page sends once a second; more is dropped, not queued
        self.last_client_stats = now
        await self.to_worker("session.client_stats", stats=message.as_dict())

    async def disconnect(self, code: int) -> None:
        if self.session_id is not None:
            await self.end("disconnect", f"socket closed ({code})", True, tell_page=False)
        self.stop_timers()
        if self.in_group:
            with contextlib.suppress(Exception):
                await self.channel_layer.group_discard(self.group, self.channel_name)

    async def kiosk_revoked(self, event: dict) -> None:
        """An administrator revoked this kiosk's device credential: end the visit now."""
        if event.get("device") != self.device_id or self.device_id is None:
            return
        self.device_id = None
        detail = str(event.get("detail") or "kiosk device credential revoked")[:500]
        if self.session_id is not None:
            await self.end("operator", detail, tell_worker=True)
        await self.turn_away("not_enrolled")

    # --- the media worker's side (channel-layer messages to this consumer) --------------------

    def from_current_session(self, event: dict) -> bool:
        if event.get("session_id") != self.session_id or self.session_id is None:
            logger.warning("ignoring %s for another session", event.get("type"))
            return False
        self.last_worker_message = time.monotonic()
        return True

    async def media_answer(self, event: dict) -> None:
        if not self.from_current_session(event):
            return
        control_channel, sdp = event.get("control_channel"), event.get("sdp")
        if not isinstance(control_channel, str) or not isinstance(sdp, str):
            logger.error("malformed media.answer for session %s", self.session_id)
            if not self.ended:
                await self.send_message(signaling.error("refused", "The media server failed."))
                await self.end("error", "malformed answer from the media worker", False)
            return
        if self.ended or self.control_channel is not None:
            # Too late (the page left or was told "busy"), or a second worker answered.
            await self.channel_layer.send(
                control_channel,
                {"type": "session.bye", "session_id": self.session_id, "reason": "disconnect"},
            )
            return
        self.control_channel = control_channel
        self.worker = str(event.get("worker", "")) or None
        if self.offer_timer is not None:
            self.offer_timer.cancel()
        await database_sync_to_async(services.record_kiosk_worker)(
            self.session_id, str(event.get("worker", ""))
        )
        await self.send_message(signaling.answer(sdp))
        for pending in self.pending_candidates:
            await self.to_worker("session.candidate", candidate=pending)
        self.pending_candidates.clear()
        self.watchdog = asyncio.create_task(self.watch_worker())

    async def media_refused(self, event: dict) -> None:
        if not self.from_current_session(event) or self.ended:
            return
        code = str(event.get("code", ""))
        reason, error_code = REFUSALS.get(code, ("error", "refused"))
        detail = str(event.get("message", "")) or code
        if error_code:
            await self.send_message(signaling.error(error_code, detail or None))
        await self.end(reason, detail, tell_worker=False)

    async def media_state(self, event: dict) -> None:
        if not self.from_current_session(event) or self.ended:
            return
        name = event.get("state")
        if name not in signaling.STATES:
            logger.warning("worker sent unknown state %r", name)
            return
        await self.send_message(
            signaling.state(name, str(event.get("reason", "")), str(event.get("detail", "")))
        )

    async def media_stats(self, event: dict) -> None:
        if not self.from_current_session(event) or self.ended:
            return
        await self.send_message(signaling.stats(event.get("stats") or {}))

    async def media_ended(self, event: dict) -> None:
        if not self.from_current_session(event):
            return
        await self.end(str(event.get("reason") or "error"), str(event.get("detail", "")), False)

    # --- timers ---------------------------------------------------------------------------

    async def wait_for_answer(self) -> None:
        await asyncio.sleep(protocol.OFFER_TIMEOUT_S)
        if self.control_channel is None and not self.ended:
            await self.end("busy", f"no media worker answered in {protocol.OFFER_TIMEOUT_S:g} s")

    async def watch_worker(self) -> None:
        """Notice a dead worker: its heartbeat expired (within 2 s of kill -9), or it has
        said nothing for WORKER_LOST_AFTER_S (the heartbeats themselves unreadable)."""
        while not self.ended:
            await asyncio.sleep(capacity.CHECK_EVERY_S)
            await self.beat_call()
            silent = time.monotonic() - self.last_worker_message
            if self.ended:
                return
            if await worker_gone(self.worker):
                await self.fail_over(f"heartbeat of {self.worker} expired")
                return
            if silent > protocol.WORKER_LOST_AFTER_S:
                await self.fail_over(f"media worker silent for {silent:.0f} s")
                return

    async def fail_over(self, detail: str) -> None:
        """The worker is gone: end its session row (abnormal end, audited) and, while the
        consent holds, ask the page for a new offer under a new session row."""
        await self.send_message(signaling.error("worker_lost"))
        with contextlib.suppress(Exception):  # in case it is only stuck: end it there
            await self.to_worker("session.bye", reason="error")
        try:
            session = await database_sync_to_async(services.fail_over)(
                self.session_id, detail, self.kiosk.pk if self.claimed else None
            )
        except Exception:
            logger.exception("fail-over of session %s failed", self.session_id)
            session = None
        if session is None:
            self.control_channel = None
            await self.end("error", detail, tell_worker=False)
            return
        metrics.FAILOVERS.inc()
        logger.info("session %s failed over to %s (%s)", self.session_id, session.pk, detail)
        self.session_id = str(session.pk)
        logformat.current_session.set(self.session_id)
        self.offered = False
        self.control_channel = self.worker = None
        self.pending_candidates.clear()
        self.candidates = 0
        await self.send_message(signaling.reoffer(self.session_id, "worker_lost"))

    async def beat_call(self) -> None:
        """Keep this kiosk's one-call claim fresh (other daphne processes see it alive)."""
        now = time.monotonic()
        # four beats within KIOSK_CALL_STALE_S: a live call's claim never looks stale
        if now - self.last_beat < settings.KIOSK_CALL_STALE_S / 4 or self.ended:
            return
        self.last_beat = now
        try:
            await database_sync_to_async(calls.beat)(self.kiosk.pk, self.session_id)
        except Exception as exc:
            logger.warning("could not refresh the call claim of kiosk %s: %s", self.slug, exc)

    def stop_timers(self) -> None:
        current = asyncio.current_task()
        for task in (self.offer_timer, self.watchdog):
            if task is not None and task is not current and not task.done():
                task.cancel()

    # --- helpers ------------------------------------------------------------------------------

    async def end(
        self, reason: str, detail: str = "", tell_worker: bool = True, *, tell_page: bool = True
    ) -> None:
        """End the visit once: tell the worker, record the reason, tell the page."""
        if self.ended:
            return
        self.ended = True
        self.stop_timers()
        if tell_worker and self.control_channel is not None:
            with contextlib.suppress(Exception):
                await self.to_worker("session.bye", reason=reason)
        elif tell_worker and self.offered:
            # The offer is out but no answer came yet: whichever worker took it ends it
            # (its answer could no longer reach a socket that is gone).
            with contextlib.suppress(Exception):
                await self.channel_layer.group_send(
                    protocol.CONTROL_GROUP,
                    protocol.sessions_end(session_id=self.session_id, reason=reason, detail=detail),
                )
        if self.session_id is not None:
            try:
                await database_sync_to_async(services.finish_kiosk_session)(
                    self.session_id, reason, detail, self.kiosk.pk if self.claimed else None
                )
            except Exception:
                logger.exception("could not record the end of session %s", self.session_id)
        if tell_page:
            message = signaling.ERROR_CODES.get(reason, "")
            await self.send_message(
                signaling.state(signaling.state_after_end(reason), reason, message)
            )
            await self.send_message(signaling.ended(reason, detail))

    async def to_worker(self, kind: str, **fields: Any) -> None:
        assert self.control_channel is not None
        await self.channel_layer.send(
            self.control_channel, {"type": kind, "session_id": self.session_id, **fields}
        )

    async def send_message(self, message: dict) -> None:
        with contextlib.suppress(Exception):  # the page may already be gone
            await self.send(text_data=signaling.encode(message))
