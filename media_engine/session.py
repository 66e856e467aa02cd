"""One visitor's call: the peer connection, the frame loop, the stats and the end.

A ``MediaSession`` is made by the worker from a ``media.offer`` (``media_engine/protocol.py``):

1. ``start`` builds an ``RTCPeerConnection`` (ICE servers from the offer, else
   ``settings.ICE_SERVERS``), refuses an offer without a video m-line (``no_video``), gives the
   video receiver the complete-frame release and camera timestamps, sends ``FusedVideoTrack``
   back, and returns the answer with all of the engine's candidates in it (aiortc does not
   trickle its own). The visitor's trickled candidates arrive later (``add_remote_candidate``).
2. Once connected, the frame loop takes the newest camera frame, runs ``FramePipeline`` on the
   session's own worker thread and hands the result to the outgoing track. While face fusion is
   not allowed for the kiosk (switch off, or unreadable: fail closed) the pipeline sends the
   "service paused" picture instead and the state is ``paused``; fused frames resume by
   themselves when the switch is back on.
3. Every ``STATS_INTERVAL_S`` (or sooner) ``media.stats`` goes to the kiosk's reply channel and
   ``session.stats`` to the dashboard's group.
4. ``end`` (bye, disconnect, ICE failure, operator, switch, error, shutdown) closes everything
   once and sends ``media.ended`` with the reason.
"""

import asyncio
import concurrent.futures
import contextlib
import logging
import time
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import candidate_from_sdp
from django.conf import settings

from consent.models import EndReason
from kiosk import metrics
from media_engine import events, protocol
from media_engine.bandwidth import path_limit, receiver_estimate, sent_bitrate, watch_bandwidth
from media_engine.jitterbuffer import install_complete_frame_release
from media_engine.pipeline import FramePipeline
from media_engine.rtptime import keep_camera_timestamps, send_camera_timestamps
from media_engine.tracks import FusedVideoTrack, NewestFrameReader
from media_engine.vp8 import install_kiosk_vp8_encoder

logger = logging.getLogger(__name__)

# How long ICE + DTLS may take before the session gives up ("ice_failed") and the worker
# gives its slot back: settings.MEDIA_ENGINE_CONNECT_TIMEOUT_S (a few seconds; an offer that
# never completes ICE must not hold a slot for long).
# A connected kiosk that sends no camera frame for this long has vanished ("disconnect"),
# long before ICE consent freshness would notice (about 30 s).
NO_CAMERA_TIMEOUT_S = 10.0
STATS_EVERY_S = protocol.STATS_INTERVAL_S * 0.9
MAX_SDP_CHARS = 100_000


class SessionRefused(Exception):
    """The offer cannot become a session; ``code`` is one of ``protocol.REFUSAL_CODES``."""

    def __init__(self, code: str, message: str) -> None:
        assert code in protocol.REFUSAL_CODES, code
        super().__init__(message)
        self.code = code
        self.message = message


def ice_servers_from(raw: Any) -> list[RTCIceServer]:
    """RTCIceServer JSON (``[{"urls": ..., "username": ..., "credential": ...}]``)."""
    if raw is None:
        raw = settings.ICE_SERVERS
    if not isinstance(raw, list):
        raise SessionRefused("bad_offer", "ice_servers must be a list of RTCIceServer objects")
    servers = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("urls"), str | list):
            raise SessionRefused("bad_offer", "each ICE server needs urls")
        servers.append(
            RTCIceServer(
                urls=item["urls"],
                username=item.get("username"),
                credential=item.get("credential"),
            )
        )
    return servers


def remote_candidate(init: Any):
    """An aiortc candidate from RTCIceCandidateInit JSON; ``None`` is end-of-candidates."""
    if not isinstance(init, dict):
        raise ValueError("candidate must be an RTCIceCandidateInit object")
    line = init.get("candidate") or ""
    if not line:
        return None
    if line.startswith("candidate:"):
        line = line[len("candidate:") :]
    try:
        candidate = candidate_from_sdp(line)
    except (AssertionError, ValueError, IndexError) as exc:
        raise ValueError(f"unreadable ICE candidate: {exc}") from exc
    candidate.sdpMid = init.get("sdpMid")
    candidate.sdpMLineIndex = init.get("sdpMLineIndex")
    if candidate.sdpMid is None and candidate.sdpMLineIndex is None:
        raise ValueError("candidate needs sdpMid or sdpMLineIndex")
    return candidate


class MediaSession:
    def __init__(
        self,
        *,
        session_id: str,
        kiosk: str,
        reply_channel: str,
        worker: str,
        channel_layer: Any,
        pipeline: FramePipeline,
        engine_name: str,
        fusion_allowed: bool,
        identity_id: int | None = None,
    ) -> None:
        self.session_id = session_id
        self.kiosk = kiosk
        self.identity_id = identity_id
        self.reply_channel = reply_channel
        self.worker = worker
        self.engine_name = engine_name
        self.pipeline = pipeline
        self.fusion_allowed = fusion_allowed
        self.state = "connecting"
        self.end_reason: str | None = None
        self.ended = asyncio.Event()
        self.client_stats: dict[str, Any] = {}
        self._layer = channel_layer
        self._pc: RTCPeerConnection | None = None
        self._reader: NewestFrameReader | None = None
        self._outgoing = FusedVideoTrack()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"pipeline-{session_id[:8]}"
        )
        self._tasks: list[asyncio.Future] = []
        self._started_at = time.monotonic()
        self._connected_at = self._started_at
        self._ending = False
        self._last_size: tuple[int, int] | None = None

    # --- start -------------------------------------------------------------------------
    async def start(self, sdp: Any, sdp_type: Any, ice_servers: Any) -> str:
        """Set the visitor's offer, return the answer SDP (with all our candidates).

        Raises ``SessionRefused`` after releasing everything it made (nothing is sent).
        """
        try:
            return await self._start(sdp, sdp_type, ice_servers)
        except BaseException:
            self._ending = True
            for task in self._tasks:
                task.cancel()
            if self._reader is not None:
                await self._reader.stop()
            self._outgoing.stop()
            await self._close_pc()
            self._executor.shutdown(wait=False, cancel_futures=True)
            raise

    async def _start(self, sdp: Any, sdp_type: Any, ice_servers: Any) -> str:
        if sdp_type != "offer" or not isinstance(sdp, str) or not sdp.strip():
            raise SessionRefused("bad_offer", "expected an SDP offer")
        if len(sdp) > MAX_SDP_CHARS:
            raise SessionRefused("bad_offer", f"SDP is longer than {MAX_SDP_CHARS} characters")
        if not any(line.startswith("m=video") for line in sdp.splitlines()):
            raise SessionRefused("no_video", "the offer has no video: the camera is needed")
        pc = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers_from(ice_servers)))
        self._pc = pc
        pc.on("track", self._on_track)
        pc.on("connectionstatechange", self._on_connection_state)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except Exception as exc:  # aiortc raises ValueError and friends on bad SDP
            raise SessionRefused("bad_offer", f"the offer was not accepted: {exc}") from exc
        video = [t for t in pc.getTransceivers() if t.kind == "video"]
        if not video or video[0].receiver.track is None:
            raise SessionRefused("no_video", "the offer sends no video: the camera is needed")
        receiver = video[0].receiver
        install_complete_frame_release(receiver)
        keep_camera_timestamps(receiver)
        install_kiosk_vp8_encoder()
        sender = pc.addTrack(self._outgoing)
        send_camera_timestamps(sender)
        watch_bandwidth(sender)
        self._sender = sender
        try:
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:
            raise SessionRefused("bad_offer", f"no answer could be made: {exc}") from exc
        self._tasks.append(asyncio.ensure_future(self._connect_deadline()))
        self._tasks.append(asyncio.ensure_future(self._stats_loop()))
        self._tasks.append(asyncio.ensure_future(self._camera_watchdog()))
        events.emit(
            "session.started",
            session_id=self.session_id,
            kiosk=self.kiosk,
            engine=self.engine_name,
            worker=self.worker,
            fusion_allowed=self.fusion_allowed,
        )
        return pc.localDescription.sdp

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "video" and self._reader is None and not self._ending:
            self._reader = NewestFrameReader(track)
            self._tasks.append(asyncio.ensure_future(self._frame_loop(self._reader)))

    async def _on_connection_state(self) -> None:
        state = self._pc.connectionState if self._pc else "closed"
        if state == "connected" and self.state == "connecting":
            self._connected_at = time.monotonic()
            await self._set_state("live" if self.fusion_allowed else "paused", "connected")
        elif state == "failed":
            await self.end(EndReason.ICE_FAILED, "the network path to the kiosk failed")

    async def _connect_deadline(self) -> None:
        limit = settings.MEDIA_ENGINE_CONNECT_TIMEOUT_S
        await asyncio.sleep(limit)
        if self.state == "connecting":
            await self.end(EndReason.ICE_FAILED, f"not connected after {limit:g} s")

    async def _camera_watchdog(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self.state not in ("live", "paused"):
                continue
            reader = self._reader
            last = reader.last_frame_at if reader is not None else None
            since = time.monotonic() - (last if last is not None else self._connected_at)
            if since > NO_CAMERA_TIMEOUT_S:
                await self.end(
                    EndReason.DISCONNECT, f"no camera frame for {NO_CAMERA_TIMEOUT_S:.0f} s"
                )
                return

    # --- frames ------------------------------------------------------------------------
    async def _frame_loop(self, reader: NewestFrameReader) -> None:
        loop = asyncio.get_running_loop()
        while True:
            frame = await reader.next()
            if frame is None:
                if not self._ending:
                    await self.end(EndReason.DISCONNECT, "the camera stream ended")
                return
            self.pipeline.bitrate_bps = path_limit(getattr(self, "_sender", None))
            allowed = self.fusion_allowed
            try:
                fused = await loop.run_in_executor(
                    self._executor,
                    lambda f=frame, a=allowed: self.pipeline.process(f, fusion_allowed=a),
                )
            except Exception as exc:
                logger.exception("session %s: the pipeline failed", self.session_id)
                events.emit(
                    "session.error",
                    session_id=self.session_id,
                    kiosk=self.kiosk,
                    stage="pipeline",
                    error=type(exc).__name__,
                )
                await self.end(EndReason.ERROR, f"frame processing failed: {type(exc).__name__}")
                return
            if allowed and not self.fusion_allowed:
                continue  # fused while the switch went off: never sent (the next is paused)
            self._outgoing.put(fused)
            size = (fused.width, fused.height)
            if size != self._last_size:
                metrics.rung_changed(self._last_size, size)
                if self._last_size is not None:
                    events.emit(
                        "session.resolution",
                        session_id=self.session_id,
                        kiosk=self.kiosk,
                        width=size[0],
                        height=size[1],
                    )
                self._last_size = size

    # --- control -----------------------------------------------------------------------
    async def add_remote_candidate(self, init: Any) -> None:
        if self._pc is None or self._ending:
            return
        try:
            candidate = remote_candidate(init)
        except ValueError as exc:
            logger.info("session %s: ignored a candidate: %s", self.session_id, exc)
            return
        await self._pc.addIceCandidate(candidate)

    def set_client_stats(self, stats: Any) -> None:
        if isinstance(stats, dict):
            self.client_stats = {
                str(k)[:64]: v
                for k, v in list(stats.items())[:32]
                if isinstance(v, int | float | str | bool | None)
            }
            metrics.observe_loop(self.client_stats.get("loop_ms"))

    async def set_fusion_allowed(self, allowed: bool) -> None:
        if allowed == self.fusion_allowed:
            return
        self.fusion_allowed = allowed
        await self.fusion_changed(allowed)

    def stop_fusing(self) -> bool:
        """Stop fused video now, without waiting for anything (the kill switch): the next
        frame is the paused picture. True when it was fusing; then call
        ``fusion_changed(False)`` to record and announce it."""
        if not self.fusion_allowed:
            return False
        self.fusion_allowed = False
        return True

    async def fusion_changed(self, allowed: bool) -> None:
        """Record and announce a change of ``fusion_allowed`` (already applied)."""
        events.emit(
            "session.resumed" if allowed else "session.paused",
            session_id=self.session_id,
            kiosk=self.kiosk,
        )
        if self.state in ("live", "paused"):
            await self._set_state(
                "live" if allowed else "paused",
                "face fusion is on" if allowed else "face fusion is switched off",
            )

    async def _set_state(self, state: str, detail: str) -> None:
        self.state = state
        await self._send(
            self.reply_channel,
            {
                "type": "media.state",
                "session_id": self.session_id,
                "state": state,
                "detail": detail,
            },
        )

    # --- stats -------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        reader = self._reader
        size = self.pipeline.last_size
        return {
            "state": self.state,
            "engine": self.engine_name,
            "provider": self.pipeline.provider,
            "worker": self.worker,
            "fusion_allowed": self.fusion_allowed,
            "processing_size": list(size) if size else None,
            "fps_in": reader.received.rate() if reader else 0.0,
            "fps_out": self._outgoing.sent.rate(),
            "frames_in": reader.received.total if reader else 0,
            "frames_out": self._outgoing.sent.total,
            "frames_skipped": reader.skipped if reader else 0,
            "frames_paused": self.pipeline.paused_frames,
            "stage_ms": self.pipeline.times.summary(),
            "adaptive": self.pipeline.adaptive.stats() if self.pipeline.adaptive else None,
            "bandwidth": {
                "receiver_estimate_bps": receiver_estimate(getattr(self, "_sender", None)),
                "sent_bps": sent_bitrate(getattr(self, "_sender", None)),
                "limit_bps": self.pipeline.bitrate_bps,
            },
            "loop_ms": self.client_stats.get("loop_ms"),
            "client": dict(self.client_stats),
            "uptime_s": round(time.monotonic() - self._started_at, 1),
        }

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(STATS_EVERY_S)
            stats = self.stats()
            metrics.observe_session_stats(stats)
            await self._send(
                self.reply_channel,
                {"type": "media.stats", "session_id": self.session_id, "stats": stats},
            )
            await self._group_send(
                {
                    "type": "session.stats",
                    "session_id": self.session_id,
                    "kiosk": self.kiosk,
                    "worker": self.worker,
                    "stats": stats,
                }
            )

    # --- end ---------------------------------------------------------------------------
    async def end(self, reason: str, detail: str = "") -> None:
        """Close the call once, whatever ends it, and tell the kiosk and the dashboard."""
        if self._ending:
            await self.ended.wait()
            return
        self._ending = True
        self.end_reason = str(reason)
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        if self._reader is not None:
            await self._reader.stop()
        self._outgoing.stop()
        await self._close_pc()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.state = "failed" if reason in (EndReason.ERROR, EndReason.ICE_FAILED) else "stopped"
        await self._send(
            self.reply_channel,
            {
                "type": "media.ended",
                "session_id": self.session_id,
                "reason": self.end_reason,
                "detail": detail,
            },
        )
        await self._group_send(
            {
                "type": "session.ended",
                "session_id": self.session_id,
                "kiosk": self.kiosk,
                "worker": self.worker,
                "reason": self.end_reason,
            }
        )
        events.emit(
            "session.ended",
            session_id=self.session_id,
            kiosk=self.kiosk,
            reason=self.end_reason,
            detail=detail,
            frames_out=self._outgoing.sent.total,
        )
        self.ended.set()

    async def _close_pc(self) -> None:
        if self._pc is not None:
            with contextlib.suppress(Exception):
                await self._pc.close()

    async def _send(self, channel: str, message: dict) -> None:
        try:
            await self._layer.send(channel, message)
        except Exception as exc:  # a full or vanished reply channel must not end the call
            logger.info("session %s: could not send %s: %s", self.session_id, message["type"], exc)

    async def _group_send(self, message: dict) -> None:
        try:
            await self._layer.group_send(protocol.STATS_GROUP, message)
        except Exception as exc:
            logger.info("session %s: could not send %s: %s", self.session_id, message["type"], exc)
