"""The media worker: takes offers while it has room, runs the sessions, follows the switch.

One ``MediaWorker`` per process (``python manage.py media_engine``), or one inside daphne in
the embedded default (``media_engine.embedded``). It meets the signaling consumer only
through the channel layer (``media_engine/protocol.py``):

- **Offers**: it receives ``media.offer`` from ``OFFERS_CHANNEL`` only while it has room for
  another session (``MEDIA_ENGINE_MAX_SESSIONS``), so several workers are competing consumers
  of one channel: whichever has room takes the next offer, and a full worker takes none (the
  consumer tells the kiosk "busy" when nobody answers in time). An offer past its
  ``deadline`` is answered ``media.refused``/``expired`` and dropped.
- **Control**: its own channel (named in every ``media.answer``) carries the kiosk's
  candidates, bye and client stats; it also joins ``CONTROL_GROUP`` for ``fusion.switch``
  nudges and ``sessions.end``.
- **The fusion switch**: re-read from the database on every nudge and every
  ``SWITCH_POLL_S`` for each kiosk with a session; a failed or slow read counts as "off"
  (fail closed).
- **Measured capacity** (``media_engine/capacity.py``): every ``HEARTBEAT_INTERVAL_S`` the
  worker measures its load (sessions, frame time, CPU) and takes offers only while the next
  session fits; the heartbeat goes to Redis (the consumer answers "busy" at once when no
  worker has room, and notices a dead worker) and to the dashboard (``worker.heartbeat``).
- **Draining**: ``drain()`` (SIGUSR1, or ``worker.drain`` on the control group from
  ``manage.py media_engine_drain``) takes no new offer, lets the calls finish, then stops.
- **Stopping**: ``stop()`` (SIGTERM in the command) stops taking offers and ends every
  session with a reason.
"""

import asyncio
import gc
import logging
import os
import socket
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections

from consent.models import EndReason
from kiosk import logformat, metrics
from media_engine import capacity, conversation, events, protocol
from media_engine.assembly import build_pipeline
from media_engine.engines.registry import EngineUnavailable
from media_engine.ice import offer_loopback_candidates
from media_engine.identities import IdentityUnavailable
from media_engine.session import MediaSession, SessionRefused
from media_engine.threads import configure_opencv

T = TypeVar("T")

logger = logging.getLogger(__name__)

SWITCH_POLL_S = 0.5
SWITCH_READ_TIMEOUT_S = 2.0
LAYER_RETRY_S = 1.0
TASK_STOP_TIMEOUT_S = 3.0
REJOIN_EVERY_BEATS = 10  # about every 4 s
END_REASONS = {choice.value for choice in EndReason}


def freeze_startup_heap() -> None:
    """Move everything allocated so far (Django, models, codecs: hundreds of thousands of
    objects) out of the garbage collector's reach. Otherwise every full collection walks it
    all while a call is live. Measured on the loaded 2-core machine during a call: one gen-2
    pass 446 ms wall, gen-0/1 passes up to 43 ms (155 ms in 12 s); frozen: no gen-2 pass,
    gen-0/1 at most 5 ms (28 ms in 12 s).
    """
    gc.collect()
    gc.freeze()


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _read_switch(kiosk: str) -> bool:
    from kiosk.selectors import fusion_allowed

    return fusion_allowed(kiosk)


def with_fresh_connections(work: Callable[..., T], *args: Any) -> T:
    """Run ``work`` in a worker thread as Django runs a request: this thread's database
    connections are health-checked before (one left from before a PostgreSQL restart is
    replaced, not used) and closed when obsolete after. ``asyncio.to_thread`` does neither."""
    close_old_connections()
    try:
        return work(*args)
    finally:
        close_old_connections()


async def read_fusion_allowed(kiosk: str) -> bool:
    """Whether fused video may be produced for ``kiosk`` now; ``False`` when unreadable."""
    try:
        return bool(
            await asyncio.wait_for(
                database_sync_to_async(_read_switch)(kiosk), timeout=SWITCH_READ_TIMEOUT_S
            )
        )
    except Exception as exc:
        logger.warning("fusion switch unreadable for kiosk %s (%s): fail closed", kiosk, exc)
        return False


class MediaWorker:
    def __init__(
        self,
        *,
        channel_layer: Any = None,
        max_sessions: int | None = None,
        name: str | None = None,
    ) -> None:
        self.layer = channel_layer or get_channel_layer()
        self.max_sessions = (
            max_sessions if max_sessions is not None else settings.MEDIA_ENGINE_MAX_SESSIONS
        )
        self.name = name or worker_name()
        self.control_channel: str | None = None
        self.sessions: dict[str, MediaSession] = {}
        self.ready = asyncio.Event()
        self._pending = 0
        self._room = asyncio.Event()
        self._stop = asyncio.Event()
        self._stop_reason: tuple[str, str] = (EndReason.ERROR, "the media worker stopped")
        self._nudge = asyncio.Event()
        self._switch_epoch = 0
        self._session_tasks: set[asyncio.Future] = set()
        self.draining = False
        self.max_load = capacity.max_load()
        self._cpu = capacity.CpuMeter(capacity.usable_cores())
        self._registry: capacity.Registry | None = None
        self.load: capacity.Load | None = None
        self._update_room()

    # --- lifecycle ---------------------------------------------------------------------
    async def run(self) -> None:
        """Serve until ``stop()``; then end every session and leave the control group."""
        if settings.MEDIA_ENGINE_LOOPBACK_CANDIDATES:
            offer_loopback_candidates()
        configure_opencv()  # the sessions' threads are the parallelism (media_engine/threads.py)
        freeze_startup_heap()
        self.control_channel = await self.layer.new_channel()
        await self.layer.group_add(protocol.CONTROL_GROUP, self.control_channel)
        self._registry = capacity.registry() if self._registry is None else self._registry
        await self._heartbeat_once()
        tasks = [
            asyncio.ensure_future(self._take_offers()),
            asyncio.ensure_future(self._control()),
            asyncio.ensure_future(self._follow_switch()),
            asyncio.ensure_future(self._heartbeat()),
        ]
        events.emit(
            "worker.started",
            session_id=None,
            kiosk=None,
            worker=self.name,
            max_sessions=self.max_sessions,
        )
        logger.info("media worker %s ready (max %d sessions)", self.name, self.max_sessions)
        self.ready.set()
        try:
            stop = asyncio.ensure_future(self._stop.wait())
            done, _ = await asyncio.wait([stop, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stop and task.exception() is not None:
                    logger.error("media worker task failed", exc_info=task.exception())
            stop.cancel()
        finally:
            tasks[0].cancel()  # take no more offers
            reason, detail = self._stop_reason
            await asyncio.gather(
                *(s.end(reason, detail) for s in list(self.sessions.values())),
                return_exceptions=True,
            )
            for task in tasks[1:]:
                task.cancel()
            # A cancelled channels-redis receive can hang for good: wait a bounded time.
            _, stuck = await asyncio.wait(tasks, timeout=TASK_STOP_TIMEOUT_S)
            if stuck:
                logger.info("left %d cancelled task(s) behind on the way out", len(stuck))
            try:
                await self.layer.group_discard(protocol.CONTROL_GROUP, self.control_channel)
            except Exception as exc:
                logger.info("could not leave the control group: %s", exc)
            await self._forget()
            events.emit("worker.stopped", session_id=None, kiosk=None, worker=self.name)

    def stop(self, reason: str = EndReason.ERROR, detail: str = "the media worker stopped") -> None:
        self._stop_reason = (reason, detail)
        self._stop.set()

    def drain(self) -> None:
        """Take no new offer; stop once the running calls have ended (upgrades)."""
        if not self.draining:
            logger.info("media worker %s draining (%d sessions)", self.name, len(self.sessions))
        self.draining = True
        self._update_room()
        self._stop_when_drained()

    def _stop_when_drained(self) -> None:
        if self.draining and not self.sessions and not self._pending:
            logger.info("media worker %s drained: stopping", self.name)
            self.stop(EndReason.ERROR, "the media worker was drained")

    def _update_room(self) -> None:
        """Open the offer gate while the next session fits: the last heartbeat's load per
        session, scaled to the sessions and offers held now (they change between beats).
        Until a heartbeat has measured a session, one at a time."""
        count = len(self.sessions) + self._pending
        measured = self.load is not None and self.load.sessions > 0
        per_session = self.load.load / self.load.sessions if measured else 0.0
        room = capacity.admits(
            sessions=count,
            max_sessions=self.max_sessions if measured else min(1, self.max_sessions),
            load=per_session * count,
            limit=self.max_load,
            draining=self.draining,
        )
        if room:
            self._room.set()
        else:
            self._room.clear()

    # --- heartbeat ---------------------------------------------------------------------
    def measure(self) -> capacity.Load:
        frame_ms = []
        for session in self.sessions.values():
            total = session.pipeline.times.summary().get("total")
            frame_ms.append(total["p50"] if total else 0.0)
        return capacity.measure(
            worker=self.name,
            frame_ms=frame_ms,
            pending=self._pending,
            max_sessions=self.max_sessions,
            cpu=self._cpu.read(),
            cores=self._cpu.cores,
            draining=self.draining,
            limit=self.max_load,
        )

    async def _heartbeat_once(self) -> None:
        self.load = self.measure()
        self._update_room()
        message = {"type": "worker.heartbeat", **self.load.as_dict()}
        metrics.observe_worker(self.load)
        metrics.observe_sessions(self.name, [s.state for s in self.sessions.values()])
        if self._registry is not None:
            try:
                await self._registry.publish(self.load)
            except Exception as exc:
                logger.warning("heartbeat not published (%s); retrying", exc)
        try:
            await self.layer.group_send(protocol.STATS_GROUP, message)
        except Exception as exc:
            logger.info("heartbeat not sent to the dashboard: %s", exc)

    async def _heartbeat(self) -> None:
        beats = 0
        while True:
            await asyncio.sleep(capacity.HEARTBEAT_INTERVAL_S)
            await self._heartbeat_once()
            beats += 1
            if beats % REJOIN_EVERY_BEATS == 0:
                await self._rejoin_control_group()

    async def _rejoin_control_group(self) -> None:
        """Join the control group again: a restarted Redis forgot it, and channels-redis
        drops members after its group expiry (a day); joining twice changes nothing."""
        try:
            await self.layer.group_add(protocol.CONTROL_GROUP, self.control_channel)
        except Exception as exc:
            logger.info("could not rejoin the control group (%s); retrying", exc)

    async def _forget(self) -> None:
        if self._registry is None:
            return
        try:
            await self._registry.forget(self.name)
            await self._registry.close()
        except Exception as exc:
            logger.info("could not remove the heartbeat: %s", exc)

    # --- offers ------------------------------------------------------------------------
    async def _receive(self, channel: str) -> dict:
        """The next message on ``channel``; waits out channel-layer outages (Redis restart)."""
        while True:
            try:
                return await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("channel layer receive on %s failed (%s); retrying", channel, exc)
                await asyncio.sleep(LAYER_RETRY_S)

    async def _take_offers(self) -> None:
        while True:
            await self._room.wait()
            message = await self._receive(protocol.OFFERS_CHANNEL)
            if message.get("type") not in ("media.offer", "call.offer"):
                logger.warning("ignored %r on the offers channel", message.get("type"))
                continue
            self._update_room()
            if not self._room.is_set():
                # The load grew while this receive waited: leave the offer to a worker
                # with room (or to this one once it has room again).
                await self._requeue(message)
                continue
            self._pending += 1
            self._update_room()
            serve = self._serve_call if message["type"] == "call.offer" else self._serve_offer
            task = asyncio.ensure_future(serve(message))
            self._session_tasks.add(task)
            task.add_done_callback(self._session_tasks.discard)

    async def _requeue(self, offer: dict) -> None:
        try:
            await self.layer.send(protocol.OFFERS_CHANNEL, offer)
        except Exception as exc:
            logger.warning("could not hand back offer %s: %s", offer.get("session_id"), exc)

    async def _serve_offer(self, message: dict) -> None:
        """A kiosk's offer: check it, build its session, answer, hold it until it ends."""
        session_id = message.get("session_id")
        # every log line of this task and of the session's tasks names the session
        logformat.current_session.set(session_id if isinstance(session_id, str) else None)
        pending = True
        try:
            offer = await self._check_offer(message)
            if offer is None:
                return
            session = await self._build_session(offer)
            if session is None:
                return
            self.sessions[offer.session_id] = session
            self._pending -= 1
            pending = False
            if await self._start_session(session, offer):
                await session.ended.wait()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._offer_failed(message, exc)
        finally:
            if pending:
                self._pending -= 1
            self._forget_ended(session_id)
            self._update_room()
            self._stop_when_drained()

    async def _check_offer(self, message: dict) -> protocol.MediaOffer | None:
        """The validated offer, or ``None`` once it was refused (or dropped: no reply)."""
        reply = protocol.reply_channel_of(message)
        if reply is None:
            logger.warning("dropped an offer without a reply channel")
            return None
        try:
            offer = protocol.MediaOffer.from_message(message)
        except protocol.OfferRefused as refused:
            await self._refuse(reply, message.get("session_id"), refused.code, refused.message)
            return None
        if offer.session_id in self.sessions:
            await self._refuse(reply, offer.session_id, "bad_offer", "this session already runs")
            return None
        return offer

    async def _build_session(self, offer: protocol.MediaOffer) -> MediaSession | None:
        """The session with its pipeline and the switch as read now (``None``: refused)."""
        epoch = self._switch_epoch
        allowed = await read_fusion_allowed(offer.kiosk)
        if epoch != self._switch_epoch:
            allowed = False  # the switch moved during the read: start paused, re-read soon
            self._nudge.set()
        try:
            pipeline = await asyncio.to_thread(
                with_fresh_connections,
                build_pipeline,
                offer.engine,
                offer.identity_id,
                offer.session_id,
            )
        except (EngineUnavailable, IdentityUnavailable) as exc:
            await self._refuse(
                offer.reply_channel, offer.session_id, "engine_unavailable", str(exc)
            )
            return None
        return MediaSession(
            session_id=offer.session_id,
            kiosk=offer.kiosk,
            reply_channel=offer.reply_channel,
            worker=self.name,
            channel_layer=self.layer,
            pipeline=pipeline,
            engine_name=offer.engine,
            fusion_allowed=allowed,
            identity_id=offer.identity_id,
        )

    async def _start_session(self, session: MediaSession, offer: protocol.MediaOffer) -> bool:
        """Negotiate and send ``media.answer`` (True), or refuse and forget it (False)."""
        try:
            answer = await session.start(offer.sdp, offer.sdp_type, offer.ice_servers)
        except SessionRefused as refused:
            del self.sessions[offer.session_id]
            await self._refuse(offer.reply_channel, offer.session_id, refused.code, refused.message)
            return False
        except Exception as exc:
            del self.sessions[offer.session_id]
            logger.exception("session %s could not start", offer.session_id)
            await self._refuse(
                offer.reply_channel, offer.session_id, "bad_offer", f"the call failed: {exc}"
            )
            return False
        events.emit(
            "session.engine",
            session_id=offer.session_id,
            kiosk=offer.kiosk,
            engine=offer.engine,
            identity_id=offer.identity_id,
        )
        await self.layer.send(
            offer.reply_channel,
            {
                "type": "media.answer",
                "session_id": offer.session_id,
                "sdp": answer,
                "sdp_type": "answer",
                "worker": self.name,
                "control_channel": self.control_channel,
            },
        )
        return True

    async def _offer_failed(self, message: dict, exc: Exception) -> None:
        """An unexpected fault while serving an offer: refuse it, or end its session."""
        session_id = message.get("session_id")
        logger.exception("offer %s failed", session_id)
        reply = protocol.reply_channel_of(message)
        if reply is not None and session_id not in self.sessions:
            await self._refuse(reply, session_id, "bad_offer", f"offer failed: {exc}")
        session = self.sessions.get(session_id)
        if session is not None:
            await session.end(EndReason.ERROR, f"the media worker failed: {exc}")

    def _forget_ended(self, session_id: Any) -> None:
        if isinstance(session_id, str):
            current = self.sessions.get(session_id)
            if current is not None and current.ended.is_set():
                del self.sessions[session_id]

    async def _serve_call(self, offer: dict) -> None:
        """A portal call's first offer (the customer's): build the call, answer, hold it."""
        pending, call = True, None
        try:
            call = await conversation.open_call(self, offer)
            if call is None:
                return
            self.sessions[call.session_id] = call
            self._pending -= 1
            pending = False
            if await conversation.answer_customer(self, call, offer):
                await call.ended.wait()
        finally:
            if pending:
                self._pending -= 1
            if call is not None and self.sessions.get(call.session_id) is call:
                del self.sessions[call.session_id]
            self._update_room()
            self._stop_when_drained()

    async def _refuse(self, reply: str, session_id: Any, code: str, message: str) -> None:
        logger.info("refused offer %s: %s (%s)", session_id, code, message)
        metrics.refused(code)
        try:
            await self.layer.send(
                reply,
                {
                    "type": "media.refused",
                    "session_id": session_id,
                    "code": code,
                    "message": message,
                },
            )
        except Exception as exc:
            logger.info("could not refuse offer %s: %s", session_id, exc)

    # --- control -----------------------------------------------------------------------
    async def _control(self) -> None:
        while True:
            message = await self._receive(self.control_channel)
            try:
                await self._dispatch(message)
            except Exception:
                logger.exception("control message %r failed", message.get("type"))

    async def _dispatch(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "fusion.switch":
            self._switch_epoch += 1  # reads already in flight may predate the change
            if message.get("enabled") is False:
                # "Off" is the safe direction: stop fused video now, before the re-read
                # (which stays the truth and resumes sessions the switch still allows).
                await self._pause_matching(message.get("kiosk"))
            self._nudge.set()
            return
        if kind == "sessions.end":
            await self._end_matching(message)
            return
        if kind == "worker.drain":
            if message.get("worker") in (self.name, "*"):
                self.drain()
            return
        session = self.sessions.get(message.get("session_id"))
        if session is None:
            return
        if isinstance(kind, str) and kind.startswith("call.") and hasattr(session, "control"):
            await session.control(message)  # a portal call (media_engine/conversation.py)
            return
        if kind == "session.candidate":
            await session.add_remote_candidate(message.get("candidate"))
        elif kind == "session.bye":
            reason = message.get("reason")
            await session.end(reason if reason in END_REASONS else EndReason.BYE, "bye")
        elif kind == "session.client_stats":
            session.set_client_stats(message.get("stats"))
        else:
            logger.info("ignored control message %r", kind)

    async def _pause_matching(self, kiosk: Any) -> None:
        """Pause the sessions of ``kiosk`` (every session when ``None``) at once: all of
        them stop fusing before any of their "paused" state messages is sent."""
        matching = [s for s in self.sessions.values() if kiosk is None or s.kiosk == kiosk]
        stopped = [s for s in matching if s.stop_fusing()]
        await asyncio.gather(*(s.fusion_changed(False) for s in stopped), return_exceptions=True)

    async def _end_matching(self, message: dict) -> None:
        keys = [k for k in ("session_id", "kiosk", "identity_id") if message.get(k) is not None]
        if not keys:
            return  # never "end everything" by accident
        reason = message.get("reason")
        reason = reason if reason in END_REASONS else EndReason.OPERATOR
        detail = str(message.get("detail") or "")[:500]
        matching = [
            s
            for s in list(self.sessions.values())
            if all(getattr(s, _SESSION_FIELD[k]) == message[k] for k in keys)
        ]
        await asyncio.gather(*(s.end(reason, detail) for s in matching))

    # --- the fusion switch ----------------------------------------------------------------
    async def _follow_switch(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._nudge.wait(), timeout=SWITCH_POLL_S)
            except TimeoutError:
                pass
            self._nudge.clear()
            await self.refresh_switch()

    async def refresh_switch(self) -> None:
        """Re-read the switch for every kiosk with a session and apply it.

        A read that was already under way when a ``fusion.switch`` nudge came may have seen
        the row before the change; its result is dropped (the nudge's own read follows)."""
        epoch = self._switch_epoch
        kiosks = {s.kiosk for s in self.sessions.values()}
        for kiosk in kiosks:
            allowed = await read_fusion_allowed(kiosk)
            if epoch != self._switch_epoch:
                return
            for session in list(self.sessions.values()):
                if session.kiosk == kiosk:
                    await session.set_fusion_allowed(allowed)


_SESSION_FIELD = {"session_id": "session_id", "kiosk": "kiosk", "identity_id": "identity_id"}
