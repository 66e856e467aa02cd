"""A portal call on a media worker: the customer's peer and the agent's peer, joined.

    agent camera ─▶ NewestFrameReader ─▶ FramePipeline (engine + label) ─▶ fused ─┬▶ customer
                  (switch off: the "service paused" still instead)               └▶ agent preview
    agent mic ─▶ prompt audio buffer ─▶ DelayedAudioTrack (video delay − audio delay) ─▶ customer
    customer camera ─▶ MediaRelay (or the blur pipeline, when the customer asked) ────▶ agent
    customer mic ───▶ MediaRelay ──────────────────────────────────────────────────────▶ agent
    (supervisor, only while the agent allows it: the same relays, receive-only)

The agent's raw camera frames only ever enter the pipeline: the only video track the customer's
peer connection sends is ``agent_fused``, which holds nothing but the pipeline's output
(labelled fused frames, or the paused picture).

Order: the customer's offer comes first, on ``OFFERS_CHANNEL`` (``call.offer``, role
``customer``): whichever worker has room builds the call and answers. The agent's offer then
goes to that worker's control channel (``call.offer``, role ``agent``), a supervisor's too
(role ``supervisor``). A ``Conversation`` sits in ``MediaWorker.sessions`` under the
customer's session id and answers the same calls as a ``MediaSession`` (``end``,
``set_fusion_allowed``, ``stop_fusing``, ``fusion_changed``), so the fusion switch, withdrawal
(``sessions.end`` by session id), identity revocation (by identity id) and shutdown reach it
unchanged. Peers carry all their candidates in their offers (no trickle on the portal).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamTrack

from consent.models import EndReason
from media_engine import protocol
from media_engine.audiojitter import PromptAudioJitterBuffer, install_prompt_audio_release
from media_engine.jitterbuffer import install_complete_frame_release
from media_engine.lipsync import DelayedAudioTrack, PipelineDelay
from media_engine.pipeline import FramePipeline
from media_engine.rtptime import keep_camera_timestamps, send_camera_timestamps
from media_engine.session import MAX_SDP_CHARS, SessionRefused, ice_servers_from
from media_engine.tracks import FusedVideoTrack, NewestFrameReader
from media_engine.vp8 import install_kiosk_vp8_encoder

logger = logging.getLogger(__name__)

ROLES = ("customer", "agent", "preview", "supervisor")
# Engines that may show the agent: never "label" or "blur" (they pass the camera through).
CALL_ENGINES = frozenset({"avatar", "swap", "insightface"})
CONNECT_TIMEOUT_S = 30.0
AGENT_JOIN_TIMEOUT_S = 30.0
STATS_EVERY_S = protocol.STATS_INTERVAL_S * 0.9


def _prompt_audio(pc: RTCPeerConnection) -> PromptAudioJitterBuffer | None:
    """The prompt audio release on the peer's (first) audio receiver (audiojitter.py)."""
    receiver = next((t.receiver for t in pc.getTransceivers() if t.kind == "audio"), None)
    return install_prompt_audio_release(receiver) if receiver is not None else None


def _tracks(pc: RTCPeerConnection, kind: str) -> list[MediaStreamTrack]:
    return [
        t.receiver.track
        for t in pc.getTransceivers()
        if t.kind == kind and t.receiver.track is not None and t.direction != "inactive"
    ]


class Conversation:
    """One portal call (see the module docstring)."""

    def __init__(
        self,
        *,
        call_id: str,
        session_id: str,
        kiosk: str,
        identity_id: int | None,
        engine_name: str,
        pipeline: FramePipeline,
        blur_pipeline: FramePipeline | None,
        worker: str,
        channel_layer: Any,
        customer_reply: str,
        fusion_allowed: bool,
        audio_extra_ms: float = 0.0,
        lipsync: bool = True,
    ) -> None:
        self.call_id = call_id
        self.session_id = session_id
        self.kiosk = kiosk
        self.identity_id = identity_id
        self.engine_name = engine_name
        self.pipeline = pipeline
        self.blur_pipeline = blur_pipeline
        self.worker = worker
        self.fusion_allowed = fusion_allowed
        self.supervisor_allowed = False
        self.state = "connecting"
        self.end_reason: str | None = None
        self.ended = asyncio.Event()
        self.replies: dict[str, str] = {"customer": customer_reply}
        self.peers: dict[str, RTCPeerConnection] = {}
        self.relay = MediaRelay()
        self.agent_fused = FusedVideoTrack()
        self.customer_view = FusedVideoTrack() if blur_pipeline is not None else None
        self.delay = PipelineDelay(extra_ms=audio_extra_ms, enabled=lipsync)
        self.agent_voice = DelayedAudioTrack(self.delay)
        self.customer_video: MediaStreamTrack | None = None
        self.customer_audio: MediaStreamTrack | None = None
        self.agent_mic: MediaStreamTrack | None = None
        self.voice_buffer: PromptAudioJitterBuffer | None = None
        self._layer = channel_layer
        self._readers: list[NewestFrameReader] = []
        self._tasks: list[asyncio.Future] = []
        self._executors: list[concurrent.futures.ThreadPoolExecutor] = []
        self._ending = False
        self._started_at = time.monotonic()

    # --- joining -----------------------------------------------------------------------------
    async def _peer(self, role: str, sdp: Any, ice_servers: Any) -> RTCPeerConnection:
        if not isinstance(sdp, str) or not sdp.startswith("v=0") or len(sdp) > MAX_SDP_CHARS:
            raise SessionRefused("bad_offer", "expected an SDP offer")
        if self._ending:
            raise SessionRefused("bad_offer", "the call has ended")
        if role in self.peers:
            raise SessionRefused("bad_offer", f"the {role} has already joined")
        install_kiosk_vp8_encoder()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers_from(ice_servers)))
        self.peers[role] = pc
        pc.on("connectionstatechange", lambda: self._on_connection(role))
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except Exception as exc:
            raise SessionRefused("bad_offer", f"the offer was not accepted: {exc}") from exc
        return pc

    async def _answer(self, pc: RTCPeerConnection) -> str:
        try:
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:
            raise SessionRefused("bad_offer", f"no answer could be made: {exc}") from exc
        return pc.localDescription.sdp

    async def join_customer(self, sdp: Any, ice_servers: Any) -> str:
        """The customer's offer (camera and microphone) -> the answer SDP."""
        pc = await self._peer("customer", sdp, ice_servers)
        videos, audios = _tracks(pc, "video"), _tracks(pc, "audio")
        if not videos or not audios:
            raise SessionRefused("no_video", "a call needs the customer's camera and microphone")
        self.customer_video, self.customer_audio = videos[0], audios[0]
        receiver = next(t.receiver for t in pc.getTransceivers() if t.kind == "video")
        install_complete_frame_release(receiver)
        _prompt_audio(pc)
        if self.customer_view is not None:
            self._start_loop(self.customer_video, self.blur_pipeline, self.customer_view, False)
        sender = pc.addTrack(self.relay.subscribe(self.agent_fused, buffered=False))
        send_camera_timestamps(sender)
        pc.addTrack(self.agent_voice)
        answer = await self._answer(pc)
        self._tasks.append(asyncio.ensure_future(self._deadline("customer", CONNECT_TIMEOUT_S)))
        self._tasks.append(asyncio.ensure_future(self._stats_loop()))
        return answer

    async def join_agent(self, sdp: Any, ice_servers: Any, reply: str) -> str:
        """The agent's offer (camera, microphone, and a receive-only video for the preview)."""
        if self.customer_video is None or self.customer_audio is None:
            raise SessionRefused("bad_offer", "the customer has not joined yet")
        pc = await self._peer("agent", sdp, ice_servers)
        videos, audios = _tracks(pc, "video"), _tracks(pc, "audio")
        if not videos or not audios:
            raise SessionRefused("no_video", "the agent's camera and microphone are needed")
        self.replies["agent"] = reply
        receiver = next(t.receiver for t in pc.getTransceivers() if t.kind == "video")
        install_complete_frame_release(receiver)
        keep_camera_timestamps(receiver)
        self.voice_buffer = _prompt_audio(pc)
        if self.voice_buffer is not None:
            self.delay.set_audio_path(self.voice_buffer.held_ms)
        self.agent_mic = audios[0]
        self.agent_voice.attach(self.relay.subscribe(self.agent_mic, buffered=True))
        self._start_loop(videos[0], self.pipeline, self.agent_fused, True)
        shown = self.customer_view or self.relay.subscribe(self.customer_video, buffered=False)
        pc.addTrack(shown)
        pc.addTrack(self.relay.subscribe(self.customer_audio, buffered=True))
        answer = await self._answer(pc)
        self._tasks.append(asyncio.ensure_future(self._deadline("agent", CONNECT_TIMEOUT_S)))
        return answer

    async def join_preview(self, sdp: Any, ice_servers: Any, reply: str) -> str:
        """The agent's preview of their own digital human: a receive-only peer of its own
        (a third m-line on the agent's main peer ends Chromium's camera stream in aiortc)."""
        if "agent" not in self.peers:
            raise SessionRefused("bad_offer", "the agent has not joined yet")
        pc = await self._peer("preview", sdp, ice_servers)
        self.replies["preview"] = reply
        pc.addTrack(self.relay.subscribe(self.agent_fused, buffered=False))
        return await self._answer(pc)

    async def join_supervisor(self, sdp: Any, ice_servers: Any, reply: str) -> str:
        """A supervisor watches and listens (receive-only), only while the agent allows it."""
        if not self.supervisor_allowed:
            raise SessionRefused("disabled", "the agent does not allow a supervisor now")
        if self.agent_mic is None or self.customer_video is None or self.customer_audio is None:
            raise SessionRefused("bad_offer", "the call is not live yet")
        pc = await self._peer("supervisor", sdp, ice_servers)
        self.replies["supervisor"] = reply
        pc.addTrack(self.relay.subscribe(self.agent_fused, buffered=False))
        pc.addTrack(self.relay.subscribe(self.agent_mic, buffered=True))
        pc.addTrack(self.customer_view or self.relay.subscribe(self.customer_video, False))
        pc.addTrack(self.relay.subscribe(self.customer_audio, buffered=True))
        return await self._answer(pc)

    async def set_supervisor_allowed(self, allowed: bool) -> None:
        self.supervisor_allowed = bool(allowed)
        if not allowed:
            await self._drop_supervisor("the agent withdrew the permission")

    async def _drop_supervisor(self, detail: str) -> None:
        pc = self.peers.pop("supervisor", None)
        reply = self.replies.pop("supervisor", None)
        if pc is not None:
            with contextlib.suppress(Exception):
                await pc.close()
        if reply is not None:
            await self._send(reply, self._ended_message("supervisor", "operator", detail))

    # --- frames ------------------------------------------------------------------------------
    def _start_loop(
        self, track: MediaStreamTrack, pipeline: FramePipeline, out: FusedVideoTrack, agent: bool
    ) -> None:
        reader = NewestFrameReader(track)
        self._readers.append(reader)
        executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"call-{self.call_id[:8]}"
        )
        self._executors.append(executor)
        self._tasks.append(
            asyncio.ensure_future(self._frame_loop(reader, pipeline, out, executor, agent))
        )

    async def _frame_loop(
        self,
        reader: NewestFrameReader,
        pipeline: FramePipeline,
        out: FusedVideoTrack,
        executor: concurrent.futures.Executor,
        agent: bool,
    ) -> None:
        loop = asyncio.get_running_loop()
        while True:
            frame = await reader.next()
            if frame is None:
                if not self._ending:
                    who = "agent" if agent else "customer"
                    await self.end(EndReason.DISCONNECT, f"the {who}'s camera stream ended")
                return
            received = reader.last_frame_at or time.monotonic()
            allowed = self.fusion_allowed if agent else True
            try:
                processed = await loop.run_in_executor(
                    executor, lambda f=frame, a=allowed: pipeline.process(f, fusion_allowed=a)
                )
            except Exception as exc:
                logger.exception("call %s: the pipeline failed", self.call_id)
                await self.end(EndReason.ERROR, f"frame processing failed: {type(exc).__name__}")
                return
            if agent and allowed and not self.fusion_allowed:
                continue  # fused while the switch went off: never sent
            out.put(processed)
            if agent:
                self.delay.add(received, time.monotonic())

    # --- the worker's session interface -------------------------------------------------------
    async def control(self, message: dict) -> None:
        """``call.*`` control messages for this call (``MediaWorker._dispatch``)."""
        kind = message.get("type")
        if kind == "call.supervisor":
            await self.set_supervisor_allowed(message.get("allowed") is True)
        elif kind == "call.offer":
            await self._join_later(message)

    async def _join_later(self, message: dict) -> None:
        role, reply = message.get("role"), message.get("reply_channel")
        joins = {
            "agent": self.join_agent,
            "preview": self.join_preview,
            "supervisor": self.join_supervisor,
        }
        if not isinstance(reply, str) or role not in joins:
            logger.info("call %s: ignored an offer without role/reply channel", self.call_id)
            return
        join = joins[role]
        try:
            sdp = await join(message.get("sdp"), message.get("ice_servers"), reply)
        except SessionRefused as refused:
            self.peers.pop(role, None)
            await self._send(reply, refusal(self.session_id, refused.code, refused.message, role))
            return
        await self._send(
            reply,
            {
                "type": "media.answer",
                "session_id": self.session_id,
                "call_id": self.call_id,
                "role": role,
                "sdp": sdp,
                "sdp_type": "answer",
                "worker": self.worker,
            },
        )

    async def add_remote_candidate(self, init: Any) -> None:
        """Portal peers put every candidate in their offer; trickled ones are not used."""

    def set_client_stats(self, stats: Any) -> None:
        """The portal pages send no stats to the worker."""

    async def set_fusion_allowed(self, allowed: bool) -> None:
        if allowed != self.fusion_allowed:
            self.fusion_allowed = allowed
            await self.fusion_changed(allowed)

    def stop_fusing(self) -> bool:
        was = self.fusion_allowed
        self.fusion_allowed = False
        return was

    async def fusion_changed(self, allowed: bool) -> None:
        if self.state in ("live", "paused"):
            await self._set_state("live" if allowed else "paused")

    # --- state, stats, end -------------------------------------------------------------------
    async def _on_connection(self, role: str) -> None:
        pc = self.peers.get(role)
        state = pc.connectionState if pc is not None else "closed"
        if state == "failed" and role in ("customer", "agent"):
            await self.end(EndReason.ICE_FAILED, f"the network path to the {role} failed")
        elif state == "connected" and role == "customer" and self.state == "connecting":
            await self._set_state("live" if self.fusion_allowed else "paused")
            self._tasks.append(asyncio.ensure_future(self._deadline("agent", AGENT_JOIN_TIMEOUT_S)))

    async def _deadline(self, role: str, seconds: float) -> None:
        await asyncio.sleep(seconds)
        pc = self.peers.get(role)
        if pc is None or pc.connectionState != "connected":
            await self.end(EndReason.ICE_FAILED, f"the {role} did not connect in {seconds:.0f} s")

    async def _set_state(self, state: str) -> None:
        self.state = state
        for reply in list(self.replies.values()):
            await self._send(
                reply, {"type": "media.state", "session_id": self.session_id, "state": state}
            )

    def stats(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "call_id": self.call_id,
            "engine": self.engine_name,
            "worker": self.worker,
            "fusion_allowed": self.fusion_allowed,
            "supervised": "supervisor" in self.peers,
            "fps_out": self.agent_fused.sent.rate(),
            "frames_out": self.agent_fused.sent.total,
            "frames_paused": self.pipeline.paused_frames,
            "audio_delay_ms": round(self.agent_voice.current_ms, 1),
            "voice_frames_in": self.agent_voice.frames_in,
            "voice_frames_out": self.agent_voice.frames_out,
            "pipeline_delay_ms": round(self.delay.measured_ms(), 1),
            "voice_buffer_ms": round(self.delay.audio_ms(), 1),
            "voice_gaps_skipped": self.voice_buffer.gaps_skipped if self.voice_buffer else 0,
            "stage_ms": self.pipeline.times.summary(),
            "uptime_s": round(time.monotonic() - self._started_at, 1),
        }

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(STATS_EVERY_S)
            stats = self.stats()
            for reply in list(self.replies.values()):
                await self._send(
                    reply, {"type": "media.stats", "session_id": self.session_id, "stats": stats}
                )
            with contextlib.suppress(Exception):
                await self._layer.group_send(
                    protocol.STATS_GROUP,
                    {
                        "type": "session.stats",
                        "session_id": self.session_id,
                        "kiosk": self.kiosk,
                        "worker": self.worker,
                        "stats": stats,
                    },
                )

    def _ended_message(self, role: str, reason: str, detail: str) -> dict:
        return {
            "type": "media.ended",
            "session_id": self.session_id,
            "call_id": self.call_id,
            "role": role,
            "reason": reason,
            "detail": detail,
        }

    async def end(self, reason: str, detail: str = "") -> None:
        """Close the whole call once, whatever ends it, and tell every party."""
        if self._ending:
            await self.ended.wait()
            return
        self._ending = True
        self.end_reason = str(reason)
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        for reader in self._readers:
            await reader.stop()
        for track in (self.agent_fused, self.customer_view, self.agent_voice):
            if track is not None:
                track.stop()
        for pc in list(self.peers.values()):
            with contextlib.suppress(Exception):
                await pc.close()
        for executor in self._executors:
            executor.shutdown(wait=False, cancel_futures=True)
        self.state = "failed" if reason in (EndReason.ERROR, EndReason.ICE_FAILED) else "stopped"
        for role, reply in list(self.replies.items()):
            await self._send(reply, self._ended_message(role, self.end_reason, detail))
        with contextlib.suppress(Exception):
            await self._layer.group_send(
                protocol.STATS_GROUP,
                {
                    "type": "session.ended",
                    "session_id": self.session_id,
                    "kiosk": self.kiosk,
                    "worker": self.worker,
                    "reason": self.end_reason,
                },
            )
        self.ended.set()

    async def _send(self, channel: str, message: dict) -> None:
        try:
            await self._layer.send(channel, message)
        except Exception as exc:
            logger.info("call %s: could not send %s: %s", self.call_id, message["type"], exc)


def refusal(session_id: Any, code: str, message: str, role: str = "customer") -> dict:
    return {
        "type": "media.refused",
        "session_id": session_id,
        "role": role,
        "code": code,
        "message": message,
    }


def check_call_offer(offer: dict) -> str | None:
    """What is wrong with a customer's ``call.offer`` (``None`` when nothing is)."""
    for name in ("session_id", "call_id", "kiosk"):
        if not isinstance(offer.get(name), str) or not offer.get(name):
            return f"the offer has no {name}"
    if offer.get("engine") not in CALL_ENGINES:
        return "the agent's engine must be one that never shows the camera: " + ", ".join(
            sorted(CALL_ENGINES)
        )
    identity = offer.get("identity_id")
    if identity is not None and (isinstance(identity, bool) or not isinstance(identity, int)):
        return "identity_id must be a number"
    deadline = offer.get("deadline")
    if isinstance(deadline, int | float) and time.time() > deadline:
        return "expired"
    return None


async def open_call(worker: Any, offer: dict) -> Conversation | None:
    """Build the call for a customer's ``call.offer`` (``None``: refused, already answered)."""
    from media_engine.assembly import build_pipeline
    from media_engine.engines.registry import EngineUnavailable
    from media_engine.identities import IdentityUnavailable
    from media_engine.worker import read_fusion_allowed, with_fresh_connections

    reply = offer.get("reply_channel")
    if not isinstance(reply, str) or not reply:
        logger.warning("dropped a call offer without a reply channel")
        return None
    session_id = offer.get("session_id")
    problem = check_call_offer(offer)
    if problem is None and session_id in worker.sessions:
        problem = "this call already runs"
    if problem is not None:
        code = "expired" if problem == "expired" else "bad_offer"
        await worker.layer.send(reply, refusal(session_id, code, problem))
        return None
    allowed = await read_fusion_allowed(offer["kiosk"])
    try:
        identity = offer.get("identity_id")
        pipeline = await asyncio.to_thread(
            with_fresh_connections, build_pipeline, offer["engine"], identity, session_id
        )
        blur = (
            await asyncio.to_thread(build_pipeline, "blur", None, session_id)
            if offer.get("blur")
            else None
        )
    except (EngineUnavailable, IdentityUnavailable) as exc:
        await worker.layer.send(reply, refusal(session_id, "engine_unavailable", str(exc)))
        return None
    extra = offer.get("audio_extra_ms")
    return Conversation(
        call_id=offer["call_id"],
        session_id=session_id,
        kiosk=offer["kiosk"],
        identity_id=offer.get("identity_id"),
        engine_name=offer["engine"],
        pipeline=pipeline,
        blur_pipeline=blur,
        worker=worker.name,
        channel_layer=worker.layer,
        customer_reply=reply,
        fusion_allowed=allowed,
        audio_extra_ms=float(extra) if isinstance(extra, int | float) else 0.0,
        lipsync=offer.get("lipsync") is not False,
    )


async def answer_customer(worker: Any, call: Conversation, offer: dict) -> bool:
    """Answer the customer's offer (True) or refuse it and close the call (False)."""
    reply = call.replies["customer"]
    try:
        sdp = await call.join_customer(offer.get("sdp"), offer.get("ice_servers"))
    except SessionRefused as refused:
        await call.end(EndReason.ERROR, refused.message)
        await worker.layer.send(reply, refusal(call.session_id, refused.code, refused.message))
        return False
    await worker.layer.send(
        reply,
        {
            "type": "media.answer",
            "session_id": call.session_id,
            "call_id": call.call_id,
            "role": "customer",
            "sdp": sdp,
            "sdp_type": "answer",
            "worker": worker.name,
            "control_channel": worker.control_channel,
        },
    )
    return True
