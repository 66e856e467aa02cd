"""Bounded retransmission on the sender: a NACKed packet is resent at most once per round
trip, and retransmissions together stay within the encoder's target rate again.

aiortc 1.16's sender resends every sequence number of every NACK at once. A receiver on a
congested link NACKs the same holes again and again (aiortc's own receiver re-lists every
missing packet on each new gap), so unbounded retransmission multiplies the traffic exactly
where the link is full and the call collapses (libwebrtc's packet history also refuses a
packet resent within one RTT, and its pacer spends retransmissions out of the target rate).

A retransmission that is itself lost costs a second round trip (the receiver re-NACKs),
and on a path with random loss (5 %, 100 ms RTT) that second round is what the round-trip
p95 is made of. While the path is not congested (``calm``: no queue, no heavy loss; a
congested link's loss is the sender's own excess and copies would add to it) and the NACK
is no burst (``bandwidth.BURST_NACK_PACKETS``: a blackout's backlog needs every byte), each
retransmission is sent twice, ``COPY_AFTER_S`` apart, the copy paid from the same budget
(``allow_copy``, never its last half): a repair then fails only when both copies are
lost. This is the cheap part of what FEC does in libwebrtc (aiortc has no FEC).

Retransmissions take their room from the media: ``RetransmitGuard.rate_bps`` is what was
retransmitted over the last ``RATE_WINDOW_S``, and ``bandwidth`` aims the encoder at the
controller's target less that rate (libwebrtc's encoder gets the allocated rate less its
protection, NACK and FEC, bitrate). A link that overflowed (a ramp step over its capacity, a
blackout's backlog) was otherwise offered the retransmissions on top of the full media rate,
up to twice what the controller aimed at, and the 0.25 s buffer of a 1 Mb/s link dropped for
seconds. The budget itself is the controller's target (``budget``), not the encoder's.

``RetransmitGuard.allow`` is the whole policy; ``guard_retransmissions`` wraps a sender.
"""

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpSender
from aiortc.rtp import RTP_HISTORY_SIZE

MIN_INTERVAL_S = 0.1  # the same packet at most this often (or once per RTT, if longer)
BUDGET_SHARE = 1.0  # retransmissions may use up to the encoder's target bitrate again
BURST_S = 0.5  # the budget's bucket holds this many seconds of it (a blackout's backlog)
COPY_AFTER_S = 0.005  # a calm path's retransmission is sent again this much later
COPY_RESERVE = 0.5  # ... unless the budget's bucket is under this share full
RATE_WINDOW_S = 0.5  # ``rate_bps``: what was retransmitted over this last window


class RetransmitGuard:
    """Per-sequence spacing and a token bucket over the retransmitted bytes."""

    def __init__(self) -> None:
        self.last: dict[int, float] = {}  # sequence number -> when it was last resent
        self.tokens = 0.0  # bytes
        self.at: float | None = None
        self.sent = self.refused = self.copies = 0
        self.recent: deque[tuple[float, int]] = deque(maxlen=4096)  # (when, bytes) resent

    def rate_bps(self, now: float) -> float:
        """Bits per second retransmitted (copies included) over the last ``RATE_WINDOW_S``."""
        while self.recent and now - self.recent[0][0] > RATE_WINDOW_S:
            self.recent.popleft()
        return sum(size for _, size in self.recent) * 8 / RATE_WINDOW_S

    def _refill(self, target_bps: float, now: float) -> None:
        rate = BUDGET_SHARE * target_bps / 8.0
        if self.at is not None:
            self.tokens = min(rate * BURST_S, self.tokens + (now - self.at) * rate)
        else:
            self.tokens = rate * BURST_S
        self.at = now

    def allow_copy(self, size: int, target_bps: float, now: float) -> bool:
        """A second copy of a retransmission just allowed, if the budget is not under
        pressure: copies never take the second half of the bucket (after a blackout or a
        burst the originals need it all)."""
        self._refill(target_bps, now)
        bucket = BUDGET_SHARE * target_bps / 8.0 * BURST_S
        if self.tokens - size < COPY_RESERVE * bucket:
            return False
        self.tokens -= size
        self.copies += 1
        self.recent.append((now, size))
        return True

    def allow(
        self, seq: int, size: int, target_bps: float, now: float, rtt_s: float | None = None
    ) -> bool:
        self._refill(target_bps, now)
        spacing = max(MIN_INTERVAL_S, rtt_s or 0.0)
        last = self.last.get(seq)
        if (last is not None and now - last < spacing) or size > self.tokens:
            self.refused += 1
            return False
        self.tokens -= size
        self.last[seq] = now
        if len(self.last) > 4 * RTP_HISTORY_SIZE:  # bounded: forget the oldest
            for old in sorted(self.last, key=self.last.__getitem__)[:RTP_HISTORY_SIZE]:
                del self.last[old]
        self.sent += 1
        self.recent.append((now, size))
        return True


def guard_retransmissions(
    sender: RTCRtpSender,
    calm: Callable[[], bool] = lambda: False,
    budget: Callable[[], float] | None = None,
) -> RetransmitGuard:
    """Wrap this sender's retransmission with a ``RetransmitGuard`` (pinned aiortc 1.16);
    while ``calm()`` says the path is not congested, each retransmission is sent twice.
    ``budget()``: the rate (b/s) the budget is a share of; default the encoder's target."""
    guard = RetransmitGuard()
    retransmit = sender._retransmit
    copies: set[asyncio.Task] = set()

    async def copy(sequence_number: int) -> None:
        await asyncio.sleep(COPY_AFTER_S)
        try:
            await retransmit(sequence_number)
        except ConnectionError:
            pass  # the call ended meanwhile

    async def guarded(sequence_number: int) -> Any:
        history = getattr(sender, "_RTCRtpSender__rtp_history", {})
        packet = history.get(sequence_number % RTP_HISTORY_SIZE)
        if packet is None or packet.sequence_number != sequence_number:
            return None
        encoder = getattr(sender, "_RTCRtpSender__encoder", None)
        target = float(budget() if budget else getattr(encoder, "target_bitrate", 0) or 500_000)
        rtt = getattr(sender, "_RTCRtpSender__rtt", None)
        size = len(packet.payload) + 12
        now = time.monotonic()
        if not guard.allow(sequence_number, size, target, now, rtt):
            return None
        await retransmit(sequence_number)
        if calm() and guard.allow_copy(size, target, now):
            task = asyncio.ensure_future(copy(sequence_number))
            copies.add(task)  # held until done (bounded: one per retransmission)
            task.add_done_callback(copies.discard)
        return None

    sender._retransmit = guarded  # type: ignore[method-assign]
    return guard
