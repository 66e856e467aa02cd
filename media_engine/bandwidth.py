"""What the network says about the outgoing video: the receiver's own bandwidth estimate,
and whether it measures pressure.

The kiosk (a browser, or aiortc in tests) measures how our video arrives and reports a
Receiver Estimated Maximum Bitrate (REMB, RTCP PSFB APP). aiortc 1.16's sender copies it into
its encoder's ``target_bitrate``, clamped (VP8: 0.25-1.5 Mb/s) and starting at a fixed
0.5 Mb/s before any report: that number is a setting, not a measurement, so adaptive
resolution must not read it as the network's word. ``watch_bandwidth`` taps the sender's
RTCP for the receiver's reports themselves, and starts the encoder at 0.7 Mb/s with a ramp
(``ratecontrol``'s slow start) that reaches a LAN's 1.5 Mb/s in five clean receiver
reports and ends at the first report of loss or of a queue (a 1.5 Mb/s start filled a
narrow link's buffer before any report could say so).

A receiver's estimate follows what it gets: it stays at or above the rate we send (aiortc's
estimator allows up to 1.5 x the incoming rate) until it sees delay building or loss, then
drops below it (to 0.85 x the incoming rate). So a low estimate while we send little (few
frames, a still picture) is no pressure; an estimate under what we send is. ``path_limit``
gives the estimate as a limit only while the receiver's latest report says so.

REMB alone does not see a full drop-tail bottleneck (constant delay, heavy loss), so the
sender's target is the smaller of the REMB and a loss-based rate driven by the receiver
reports' fraction lost (GCC-style, ``media_engine/ratecontrol.py``): ``watch_bandwidth``
applies it to the encoder after aiortc's own REMB handling, and ``path_limit`` reports it as
pressure once a cut (loss or a queue) has taken it under the LAN's rate. Keyframe requests
(PLI/FIR) are served at most once per ``KEYFRAME_MIN_INTERVAL_S`` (libwebrtc's 300 ms): a
receiver that asks on every broken frame would otherwise get a keyframe storm, which
overflows a narrow link and breaks more frames. Retransmissions are bounded too
(``media_engine/retransmit.py``), and their rate comes out of the media's: the encoder aims
at the target less what was retransmitted over the last 0.5 s (``media_target``, in steps of
``PROTECTION_STEP_BPS``, never under the controller's floor; re-applied at every encoded
frame, so the media's share comes back as the repairs stop). Without it a ramp step over a
1 Mb/s link, or a blackout's backlog, offered the link the repairs on top of the full media
rate (up to twice the target, in the bench's runs), and its 0.25 s buffer dropped for
seconds.

Like ``rtptime``, this reaches into aiortc's sender (pinned to aiortc 1.16.0); anything
missing reads as "no estimate", never an error.
"""

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCRtpSender
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    unpack_remb_fci,
)

from media_engine import ratecontrol
from media_engine.jitterbuffer import require_pinned_aiortc
from media_engine.retransmit import guard_retransmissions

# A LAN's rate: enough for the top rung (adaptive.LADDER[0].min_bitrate_bps); VP8's ceiling
# in aiortc. The encoder starts lower and ramps up to it while the receiver reports neither
# loss nor a queue (ratecontrol's ramp): 0.7 -> 0.875 -> ... -> 1.5 Mb/s.
LAN_BITRATE_BPS = 1_500_000
START_BITRATE_BPS = 700_000
# A report older than this no longer describes the path (the receiver stopped reporting).
STALE_AFTER_S = 5.0
# An estimate under this share of what we send is the receiver measuring congestion (its
# estimator answers overuse with 0.85 x the incoming rate).
CONGESTED = 0.9
# What we send: bytes over the last SENT_WINDOW_S, sampled at most every SAMPLE_EVERY_S.
SENT_WINDOW_S, SAMPLE_EVERY_S = 2.0, 0.25
# At most one keyframe per this interval, however many requests come (libwebrtc's
# EncoderRtcpFeedback: kMinKeyframeSendIntervalMs = 300).
KEYFRAME_MIN_INTERVAL_S = 0.3
# A NACK listing more packets than this is a burst or a blackout's backlog, not random loss:
# its retransmissions are not sent twice (the originals need the whole budget).
BURST_NACK_PACKETS = 4
# Retransmissions take their rate from the media's (``media_target``), in steps of this
# (fewer rate changes while the window slides).
PROTECTION_STEP_BPS = 25_000
_ATTRIBUTE = "_kiosk_receiver_estimate"


@dataclass
class ReceiverEstimate:
    """The receiver's latest report on one sender (bits per second, monotonic time)."""

    bps: float | None = None
    at: float | None = None
    reports: int = 0
    started: bool = False  # the encoder's start rate has been set (or a report came first)
    congested: bool = False  # the latest report was under what we sent
    sent: deque = field(default_factory=lambda: deque(maxlen=64))  # (time, bytes sent)
    rate: ratecontrol.RateState = field(
        default_factory=lambda: ratecontrol.ramping(START_BITRATE_BPS)
    )
    start_bps: float = START_BITRATE_BPS
    keyframe_at: float | None = None  # when a keyframe request was last served
    sender_reports: dict = field(default_factory=dict)  # LSR -> wall time it left
    keyframes_skipped: int = 0
    burst: bool = False  # the NACK being served lists a burst (BURST_NACK_PACKETS)
    retransmitted: Callable[[float], float] = lambda now: 0.0  # b/s resent lately

    def copies_due(self, now: float) -> bool:
        """Retransmissions are sent twice: the path is calm and the NACK is no burst."""
        return not self.burst and ratecontrol.calm(self.rate, now)

    def current(self, now: float | None = None) -> float | None:
        if self.bps is None or self.at is None:
            return None
        if (time.monotonic() if now is None else now) - self.at > STALE_AFTER_S:
            return None
        return self.bps

    def sample_sent(self, octets: int, now: float) -> None:
        if self.sent and now - self.sent[-1][0] < SAMPLE_EVERY_S:
            return
        self.sent.append((now, octets))
        while now - self.sent[0][0] > SENT_WINDOW_S:
            self.sent.popleft()

    def sent_bps(self) -> float | None:
        """What we have been sending (payload bits per second), when measured long enough."""
        if len(self.sent) < 2 or self.sent[-1][0] - self.sent[0][0] < SENT_WINDOW_S / 2:
            return None
        (t0, o0), (t1, o1) = self.sent[0], self.sent[-1]
        return (o1 - o0) * 8 / (t1 - t0)

    def limit(self, now: float | None = None) -> float | None:
        """The smaller of the estimate, while the receiver's latest report measures
        congestion, and the loss-based rate, once a cut has taken it under a LAN's rate."""
        bps = self.current(now)
        limits = [bps] if bps is not None and self.congested else []
        if ratecontrol.loss_limited(self.rate, LAN_BITRATE_BPS):
            limits.append(self.rate.loss_bps)
        return min(limits) if limits else None

    def keyframe_due(self, now: float) -> bool:
        """Serve this keyframe request (and note it), or skip it as too soon after the last."""
        if self.keyframe_at is not None and now - self.keyframe_at < KEYFRAME_MIN_INTERVAL_S:
            self.keyframes_skipped += 1
            return False
        self.keyframe_at = now
        return True


def watch_bandwidth(sender: RTCRtpSender, *, start_bps: float = START_BITRATE_BPS) -> None:
    """Keep this sender's receiver reports, and start its encoder at ``start_bps`` (then the
    ramp).

    Call it before the connection starts (before ``setLocalDescription``)."""
    require_pinned_aiortc()
    if getattr(sender, _ATTRIBUTE, None) is not None:
        return
    estimate = ReceiverEstimate(rate=ratecontrol.ramping(start_bps), start_bps=float(start_bps))
    setattr(sender, _ATTRIBUTE, estimate)
    handle_rtcp = sender._handle_rtcp_packet
    encode = sender._next_encoded_frame
    send_keyframe = sender._send_keyframe

    async def handle_rtcp_packet(packet: Any) -> None:
        estimate.burst = is_burst_nack(packet)
        await handle_rtcp(packet)  # aiortc: NACK, PLI, and REMB straight into the encoder
        note_report(sender, estimate, packet)
        note_losses(estimate, sender._ssrc, packet, time.monotonic())
        if estimate.started:
            apply_target(sender, estimate)

    def throttled_keyframe() -> None:
        if estimate.keyframe_due(time.monotonic()):
            send_keyframe()

    async def next_encoded_frame(codec: Any) -> Any:
        encoded = await encode(codec)
        if not estimate.started:
            start_encoder(sender, estimate, start_bps)
        else:  # the media's share comes back as retransmissions stop
            apply_target(sender, estimate)
        return encoded

    sender._handle_rtcp_packet = handle_rtcp_packet
    sender._next_encoded_frame = next_encoded_frame
    original_send_rtcp = sender._send_rtcp

    async def send_rtcp(packets: list) -> None:
        for packet in packets:
            note_sender_report(estimate, packet)
        await original_send_rtcp(packets)

    sender._send_keyframe = throttled_keyframe
    sender._send_rtcp = send_rtcp
    guard = guard_retransmissions(
        sender,
        calm=lambda: estimate.copies_due(time.monotonic()),
        budget=lambda: ratecontrol.target(estimate.rate),
    )
    estimate.retransmitted = guard.rate_bps


def is_burst_nack(packet: Any) -> bool:
    """A NACK that lists more than ``BURST_NACK_PACKETS`` packets."""
    if not isinstance(packet, RtcpRtpfbPacket) or packet.fmt != RTCP_RTPFB_NACK:
        return False
    return len(packet.lost) > BURST_NACK_PACKETS


def note_report(
    sender: RTCRtpSender, estimate: ReceiverEstimate, packet: Any, now: float | None = None
) -> None:
    """Keep the bitrate of a REMB that names this sender's stream, and whether it is under
    what we have been sending (congestion)."""
    if not isinstance(packet, RtcpPsfbPacket) or packet.fmt != RTCP_PSFB_APP:
        return
    try:
        bitrate, ssrcs = unpack_remb_fci(packet.fci)
    except ValueError:
        return
    if sender._ssrc in ssrcs:
        now = time.monotonic() if now is None else now
        sample_sent(sender, estimate, now)
        estimate.bps, estimate.at = float(bitrate), now
        estimate.rate = ratecontrol.on_remb(estimate.rate, bitrate)
        estimate.reports += 1
        sent = estimate.sent_bps()
        estimate.congested = sent is not None and bitrate < CONGESTED * sent


def note_losses(estimate: ReceiverEstimate, ssrc: int, packet: Any, now: float) -> None:
    """Feed the controller with a receiver report on ``ssrc``: its round trip, then its
    fraction lost."""
    if not isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
        return
    for report in packet.reports:
        if report.ssrc == ssrc:
            rtt = round_trip(estimate, report)  # first: a queue holds back the probe
            if rtt is not None:
                estimate.rate = ratecontrol.on_rtt(estimate.rate, rtt, now)
            estimate.rate = ratecontrol.on_report(estimate.rate, report.fraction_lost / 256, now)


def note_sender_report(estimate: ReceiverEstimate, packet: Any) -> None:
    """Remember when each of our sender reports left (for the round trip, RFC 3550 6.4.1)."""
    if isinstance(packet, RtcpSrPacket):
        lsr = (packet.sender_info.ntp_timestamp >> 16) & 0xFFFFFFFF
        estimate.sender_reports[lsr] = time.time()
        while len(estimate.sender_reports) > 16:  # bounded
            estimate.sender_reports.pop(next(iter(estimate.sender_reports)))


def round_trip(estimate: ReceiverEstimate, report: Any) -> float | None:
    """now − when the report's LSR left − the receiver's DLSR, in seconds; None if unknown."""
    sent = estimate.sender_reports.get(report.lsr) if report.lsr else None
    if sent is None or not report.dlsr:
        return None
    return time.time() - sent - report.dlsr / 65536


def media_target(estimate: ReceiverEstimate, now: float) -> int:
    """The smaller of the loss-based rate and the REMB, less what retransmissions took
    lately (in steps of ``PROTECTION_STEP_BPS``), never under the controller's floor."""
    target = ratecontrol.target(estimate.rate)
    resent = estimate.retransmitted(now)
    protection = PROTECTION_STEP_BPS * -(-resent // PROTECTION_STEP_BPS)  # rounded up
    return int(max(ratecontrol.RatePolicy.min_bps, target - protection))


def apply_target(sender: RTCRtpSender, estimate: ReceiverEstimate) -> None:
    """Aim the encoder at the media's share of the controller's target (``media_target``)."""
    encoder = getattr(sender, "_RTCRtpSender__encoder", None)
    if encoder is not None and hasattr(encoder, "target_bitrate"):
        wanted = media_target(estimate, time.monotonic())
        if encoder.target_bitrate != wanted:
            encoder.target_bitrate = wanted


def sample_sent(sender: RTCRtpSender, estimate: ReceiverEstimate, now: float) -> None:
    octets = getattr(sender, "_RTCRtpSender__octet_count", None)
    if isinstance(octets, int):
        estimate.sample_sent(octets, now)


def start_encoder(sender: RTCRtpSender, estimate: ReceiverEstimate, start_bps: float) -> None:
    """Once the encoder exists: its first target, unless the receiver has spoken already."""
    encoder = getattr(sender, "_RTCRtpSender__encoder", None)
    if encoder is None or not hasattr(encoder, "target_bitrate"):
        return
    estimate.started = True
    apply_target(sender, estimate)


def _watched(sender: RTCRtpSender | None) -> ReceiverEstimate | None:
    estimate = getattr(sender, _ATTRIBUTE, None)
    return estimate if isinstance(estimate, ReceiverEstimate) else None


def receiver_estimate(sender: RTCRtpSender | None) -> float | None:
    """The receiver's current estimate for this sender (b/s), or None: no report yet, a stale
    one, or a sender nobody watches."""
    estimate = _watched(sender)
    return estimate.current() if estimate else None


def sent_bitrate(sender: RTCRtpSender | None) -> float | None:
    """What this sender has been sending lately (payload b/s), when known."""
    estimate = _watched(sender)
    if estimate is None:
        return None
    sample_sent(sender, estimate, time.monotonic())
    return estimate.sent_bps()


def path_limit(sender: RTCRtpSender | None) -> float | None:
    """The bitrate the path limits this sender to, as the receiver measures it (its estimate
    while it reports congestion); None: no measured pressure."""
    estimate = _watched(sender)
    if estimate is None:
        return None
    sample_sent(sender, estimate, time.monotonic())
    return estimate.limit()
