"""A calm loopback call at 1280×720 through a real media session, for the full-resolution
test and bench: how soon the kiosk gets the 720p rung, and whether it keeps it.

The server side is the product's ``MediaSession`` with a real pipeline and adaptive
resolution, on an in-memory channel layer; the kiosk is a real aiortc peer (``KioskPeer``)
sending a 1280×720 camera. Everything stays on loopback. With ``engine="label"`` the pipeline
does next to nothing, so what moves the ladder is the network signal alone (a busy CI
machine's CPU pressure would be a reason of its own); other engines go through
``build_pipeline``. The frame budget is the camera's frame interval.

``estimate="encoder_target"`` replays the signal this project used before (aiortc's encoder
target, which sits at its 0.5 Mb/s default until a REMB, read as the path's bitrate), so a
bench can compare both in one run.
"""

import asyncio
import time
import uuid
from dataclasses import dataclass

from channels.layers import InMemoryChannelLayer

from consent.models import EndReason
from media_engine import session as session_module
from media_engine.adaptive import AdaptiveResolution
from media_engine.assembly import build_pipeline
from media_engine.bandwidth import receiver_estimate
from media_engine.engines.registry import create_engine
from media_engine.pipeline import FramePipeline
from media_engine.session import MediaSession
from tests.support.loopclient import KioskPeer

FULL = (1280, 720)


@dataclass(frozen=True)
class FullResolutionCall:
    time_to_live_s: float | None  # answer accepted -> the session is live (connected)
    time_to_first_frame_s: float | None  # live -> first returned frame
    time_to_720p_s: float | None  # live -> since when every returned frame is 1280×720
    share_720p: float  # returned frames at 1280×720
    frames: int
    rung: str | None  # the ladder's rung at the end
    reason: str | None  # why it last moved
    moves: int
    receiver_estimate_bps: float | None  # the last one the session saw
    min_estimate_bps: float | None


def encoder_target(sender) -> float | None:
    """The stock signal: aiortc's encoder target (its default before any REMB)."""
    encoder = getattr(sender, "_RTCRtpSender__encoder", None)
    bitrate = getattr(encoder, "target_bitrate", None)
    return float(bitrate) if isinstance(bitrate, int | float) and bitrate > 0 else None


async def full_resolution_call(
    seconds: float, *, engine: str = "blur", fps: float = 15.0, estimate: str = "receiver"
) -> FullResolutionCall:
    """One call of ``seconds`` after the answer; the figures at its end."""
    saved = session_module.path_limit, session_module.watch_bandwidth
    if estimate == "encoder_target":
        session_module.path_limit = encoder_target
        session_module.watch_bandwidth = lambda sender: None
    elif estimate != "receiver":
        raise ValueError(f"estimate must be 'receiver' or 'encoder_target', not {estimate!r}")
    layer = InMemoryChannelLayer()
    pipeline = await asyncio.to_thread(pipeline_for, engine, fps)
    session = MediaSession(
        session_id=str(uuid.uuid4()),
        kiosk="full-resolution",
        reply_channel=await layer.new_channel(),
        worker="bench",
        channel_layer=layer,
        pipeline=pipeline,
        engine_name=engine,
        fusion_allowed=True,
    )
    peer = KioskPeer(width=FULL[0], height=FULL[1], fps=fps)
    try:
        answer = await session.start(await peer.offer(), "offer", [])
        await peer.accept(answer)
        started = time.monotonic()
        live_at, estimates = await _watch(session, started + seconds)
        return _figures(session, peer, started, live_at, estimates)
    finally:
        session_module.path_limit, session_module.watch_bandwidth = saved
        await session.end(EndReason.BYE, "full-resolution call over")
        await peer.close()


def pipeline_for(engine: str, fps: float) -> FramePipeline:
    if engine == "label":
        adaptive = AdaptiveResolution()
        pipeline = FramePipeline(
            create_engine("label", None), adaptive=adaptive, processing_size=adaptive.size_limit()
        )
    else:
        pipeline = build_pipeline(engine, None)
    pipeline.frame_budget_ms = 1000.0 / fps
    return pipeline


async def _watch(session: MediaSession, until: float) -> tuple[float | None, list[float]]:
    """When the session went live, and the receiver's estimates seen during the call."""
    live_at, estimates, polls = None, [], 0
    while time.monotonic() < until:  # bounded: ends at ``until``
        await asyncio.sleep(0.02)
        if live_at is None and session.state == "live":
            live_at = time.monotonic()
        polls += 1
        bps = receiver_estimate(getattr(session, "_sender", None))
        if bps is not None and polls % 5 == 0:
            estimates.append(bps)
    return live_at, estimates


def _figures(
    session, peer, started: float, live_at: float | None, estimates: list[float]
) -> FullResolutionCall:
    returned = peer.returned
    live = live_at if live_at is not None else started
    frames = returned.frames if returned else 0
    at_full = returned.sizes.get(FULL, 0) if returned else 0
    holds = returned is not None and returned.last_size == FULL
    adaptive = session.pipeline.adaptive.stats() if session.pipeline.adaptive else {}
    return FullResolutionCall(
        time_to_live_s=None if live_at is None else live_at - started,
        time_to_first_frame_s=(returned.first_at - live)
        if returned and returned.first_at
        else None,
        time_to_720p_s=max(0.0, returned.size_since - live) if holds else None,
        share_720p=at_full / frames if frames else 0.0,
        frames=frames,
        rung=adaptive.get("rung"),
        reason=adaptive.get("reason"),
        moves=adaptive.get("moves", 0),
        receiver_estimate_bps=estimates[-1] if estimates else None,
        min_estimate_bps=min(estimates) if estimates else None,
    )
