"""What the network says about the outgoing video: the receiver's own bandwidth estimate.

The kiosk (a browser, or aiortc in tests) measures how our video arrives and reports a
Receiver Estimated Maximum Bitrate (REMB, RTCP PSFB APP). aiortc 1.16's sender copies it into
its encoder's ``target_bitrate``, clamped (VP8: 0.25-1.5 Mb/s) and starting at a fixed
0.5 Mb/s before any report: that number is a setting, not a measurement, so adaptive
resolution must not read it as the network's word. ``watch_bandwidth`` taps the sender's
RTCP for the receiver's reports themselves, and starts the encoder at a rate a LAN carries
(the receiver's first reports bring it down at once where the path is narrower).

Like ``rtptime``, this reaches into aiortc's sender (pinned to aiortc 1.16.0); anything
missing reads as "no estimate", never an error.
"""

import time
from dataclasses import dataclass
from typing import Any

from aiortc import RTCRtpSender
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, unpack_remb_fci

from media_engine.jitterbuffer import require_pinned_aiortc

# Where the encoder starts before the receiver has said anything: enough for the top rung
# (adaptive.LADDER[0].min_bitrate_bps) on a LAN; VP8's ceiling in aiortc.
START_BITRATE_BPS = 1_500_000
# A report older than this no longer describes the path (the receiver stopped reporting).
STALE_AFTER_S = 5.0
_ATTRIBUTE = "_kiosk_receiver_estimate"


@dataclass
class ReceiverEstimate:
    """The receiver's latest report on one sender (bits per second, monotonic time)."""

    bps: float | None = None
    at: float | None = None
    reports: int = 0
    started: bool = False  # the encoder's start rate has been set (or a report came first)

    def current(self, now: float | None = None) -> float | None:
        if self.bps is None or self.at is None:
            return None
        if (time.monotonic() if now is None else now) - self.at > STALE_AFTER_S:
            return None
        return self.bps


def watch_bandwidth(sender: RTCRtpSender, *, start_bps: float = START_BITRATE_BPS) -> None:
    """Keep this sender's receiver reports, and start its encoder at ``start_bps``.

    Call it before the connection starts (before ``setLocalDescription``)."""
    require_pinned_aiortc()
    if getattr(sender, _ATTRIBUTE, None) is not None:
        return
    estimate = ReceiverEstimate()
    setattr(sender, _ATTRIBUTE, estimate)
    handle_rtcp = sender._handle_rtcp_packet
    encode = sender._next_encoded_frame

    async def handle_rtcp_packet(packet: Any) -> None:
        note_report(sender, estimate, packet)
        await handle_rtcp(packet)

    async def next_encoded_frame(codec: Any) -> Any:
        encoded = await encode(codec)
        if not estimate.started:
            start_encoder(sender, estimate, start_bps)
        return encoded

    sender._handle_rtcp_packet = handle_rtcp_packet
    sender._next_encoded_frame = next_encoded_frame


def note_report(sender: RTCRtpSender, estimate: ReceiverEstimate, packet: Any) -> None:
    """Keep the bitrate of a REMB that names this sender's stream."""
    if not isinstance(packet, RtcpPsfbPacket) or packet.fmt != RTCP_PSFB_APP:
        return
    try:
        bitrate, ssrcs = unpack_remb_fci(packet.fci)
    except ValueError:
        return
    if sender._ssrc in ssrcs:
        estimate.bps = float(bitrate)
        estimate.at = time.monotonic()
        estimate.reports += 1


def start_encoder(sender: RTCRtpSender, estimate: ReceiverEstimate, start_bps: float) -> None:
    """Once the encoder exists: its first target, unless the receiver has spoken already."""
    encoder = getattr(sender, "_RTCRtpSender__encoder", None)
    if encoder is None or not hasattr(encoder, "target_bitrate"):
        return
    if estimate.bps is None:
        encoder.target_bitrate = int(start_bps)
    estimate.started = True


def receiver_estimate(sender: RTCRtpSender | None) -> float | None:
    """The receiver's current estimate for this sender (b/s), or None: no report yet, a stale
    one, or a sender nobody watches."""
    estimate = getattr(sender, _ATTRIBUTE, None)
    return estimate.current() if isinstance(estimate, ReceiverEstimate) else None
