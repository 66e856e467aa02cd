"""One real aiortc call on an impaired link, in this process: the product's
``MediaSession`` (label engine, adaptive resolution) and a real kiosk peer (``KioskPeer``),
every RTP/RTCP datagram both ways through ``tests/support/impairment.py``. It samples what
the session's sender aims at and the ladder's rung, for the weak-network test."""

import asyncio
import time
import uuid
from dataclasses import dataclass, field

from channels.layers import InMemoryChannelLayer

from consent.models import EndReason
from media_engine.bandwidth import watch_bandwidth
from media_engine.session import MediaSession
from tests.support.full_resolution import pipeline_for
from tests.support.impairment import Profile, impaired_sends
from tests.support.loopclient import KioskPeer

KIOSK_START_BPS = 500_000  # aiortc's VP8 default


@dataclass
class Sample:
    at: float  # seconds since the answer
    target_bps: float | None  # the session's encoder target
    rung: str | None
    reason: str | None  # why the ladder last moved
    frames: int  # frames the kiosk has got so far


@dataclass
class WeakCall:
    session: MediaSession
    peer: KioskPeer
    links: dict
    started: float = field(default_factory=time.monotonic)
    samples: list[Sample] = field(default_factory=list)

    def sample(self) -> Sample:
        sender = getattr(self.session, "_sender", None)
        encoder = getattr(sender, "_RTCRtpSender__encoder", None)
        target = getattr(encoder, "target_bitrate", None)
        adaptive = self.session.pipeline.adaptive
        returned = self.peer.returned
        s = Sample(
            at=time.monotonic() - self.started,
            target_bps=float(target) if target else None,
            rung=adaptive.rung.name if adaptive else None,
            reason=adaptive.state.reason if adaptive else None,
            frames=returned.frames if returned else 0,
        )
        self.samples.append(s)
        return s

    async def run(self, seconds: float, every: float = 0.25) -> None:
        until = time.monotonic() + seconds
        while time.monotonic() < until:  # bounded
            await asyncio.sleep(every)
            self.sample()

    def set_profile(self, profile: Profile) -> None:
        for link in self.links.values():
            link.profile = profile

    def blackout(self, seconds: float) -> float:
        """Drop everything both ways for ``seconds``; returns when it ends (monotonic)."""
        end = time.monotonic() + seconds
        for link in self.links.values():
            link.blackout_until = end
        return end


async def weak_call(profile: Profile, body) -> WeakCall:
    """Run ``await body(call)`` during one call on ``profile``'s link; the call's record."""
    layer = InMemoryChannelLayer()
    fps = 15.0
    pipeline = await asyncio.to_thread(pipeline_for, "label", fps)
    session = MediaSession(
        session_id=str(uuid.uuid4()),
        kiosk="weak-network",
        reply_channel=await layer.new_channel(),
        worker="test",
        channel_layer=layer,
        pipeline=pipeline,
        engine_name="label",
        fusion_allowed=True,
    )
    peer = KioskPeer(width=640, height=480, fps=fps)
    # the kiosk stands for a browser, whose sender runs GCC: give the test peer's stock
    # aiortc sender the product's controls (it would flood the capped uplink otherwise)
    kiosk_sender = next(t.sender for t in peer.pc.getTransceivers() if t.kind == "video")
    watch_bandwidth(kiosk_sender, start_bps=KIOSK_START_BPS)
    with impaired_sends(profile) as links:
        try:
            answer = await session.start(await peer.offer(), "offer", [])
            await peer.accept(answer)
            call = WeakCall(session, peer, links)
            await body(call)
            return call
        finally:
            await session.end(EndReason.BYE, "weak-network call over")
            await peer.close()
