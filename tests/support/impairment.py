"""A user-space impaired link for WebRTC tests and benches (netem is not available here).

Loss, delay, jitter (which reorders), a bandwidth cap and loss bursts are applied to RTP and
RTCP datagrams at aioice's UDP protocol (``StunProtocol``) in this process; STUN and DTLS
pass untouched so that a call still sets up. The model of one direction (``Impairment``):

1. a blackout (``blackout_until``) drops everything;
2. loss: Gilbert-Elliott bursts (good -> bad with ``burst_enter`` per packet, bad -> good
   with ``burst_leave``; every packet in the bad state is lost), then independent loss
   ``loss``;
3. the cap: a FIFO bottleneck serialising at ``rate_bps``; a packet that would wait more
   than ``MAX_QUEUE_S`` in its queue is dropped (drop-tail, a bounded buffer like a real
   router's: at 1 Mb/s, 0.25 s is about 31 kB);
4. propagation: ``delay_ms`` plus a uniform ``0..jitter_ms`` per packet, after the queue
   (packets overtake each other: reordering).

``bench/network.py`` impairs the kiosk peer's own traffic both ways (the worker is another
process); ``impaired_sends`` impairs every send in this process, for a test whose two peers
both live here (each socket gets its own direction's queue).
"""

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

MAX_QUEUE_S = 0.25  # the capped link's buffer: beyond it, packets are dropped


@dataclass
class Profile:
    name: str
    loss: float = 0.0  # independent loss per packet, each way
    delay_ms: float = 0.0  # one way, each way
    jitter_ms: float = 0.0  # uniform extra delay: reorders packets
    rate_bps: float | None = None  # bandwidth cap, each way
    burst_enter: float = 0.0  # Gilbert-Elliott: good -> bad per packet
    burst_leave: float = 0.25  # bad -> good per packet (mean burst 4 packets)


class Impairment:
    """One direction of the link."""

    def __init__(self, profile: Profile, seed: int) -> None:
        self.profile = profile
        self.random = random.Random(seed)
        self.bad = False
        self.blackout_until = 0.0
        self.free_at = 0.0
        self.sent = self.dropped = self.queue_dropped = 0
        self.waits_ms: list[float] = []  # what the link added to each delivered packet

    def lost(self, now: float) -> bool:
        p = self.profile
        if now < self.blackout_until:
            return True
        if p.burst_enter:
            if self.bad and self.random.random() < p.burst_leave:
                self.bad = False
            elif not self.bad and self.random.random() < p.burst_enter:
                self.bad = True
            if self.bad:
                return True
        return self.random.random() < p.loss

    def submit(self, size: int, deliver: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        self.sent += 1
        if self.lost(now):
            self.dropped += 1
            return
        p = self.profile
        wait = p.delay_ms / 1000.0 + self.random.uniform(0, p.jitter_ms / 1000.0)
        if p.rate_bps:
            start = max(now, self.free_at)
            if start - now > MAX_QUEUE_S:
                self.dropped += 1
                self.queue_dropped += 1
                return
            self.free_at = start + size * 8 / p.rate_bps
            wait += self.free_at - now
        if len(self.waits_ms) < 200_000:  # bounded
            self.waits_ms.append(wait * 1000.0)
        if wait <= 0:
            deliver()
        else:
            loop.call_later(wait, deliver)


def is_media(data: bytes) -> bool:
    """RTP and RTCP (first byte 128..191); STUN and DTLS pass untouched."""
    return bool(data) and 128 <= data[0] <= 191


@contextlib.contextmanager
def impaired_sends(profile: Profile) -> Iterator[dict]:
    """Impair every RTP/RTCP datagram this process sends, each socket its own direction.

    Yields the live ``{protocol id: Impairment}`` map: change ``profile`` or set a blackout
    on its values during the call."""
    from aioice.ice import StunProtocol

    original = StunProtocol.send_data
    links: dict[int, Impairment] = {}

    async def send_data(self, data: bytes, addr) -> None:
        if not is_media(data):
            return await original(self, data, addr)
        link = links.setdefault(id(self), Impairment(profile, seed=len(links) + 1))

        def deliver() -> None:
            if self.transport is not None and not self.transport.is_closing():
                self.transport.sendto(data, addr)

        link.submit(len(data), deliver)

    StunProtocol.send_data = send_data
    try:
        yield links
    finally:
        StunProtocol.send_data = original
