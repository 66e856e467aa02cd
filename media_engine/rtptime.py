"""Each fused frame goes back with the RTP timestamp of the camera frame it was made from.

The kiosk page measures its own loop: its sender notes the RTP timestamp of every camera frame
it sends (an encoded-frame transform), and its remote ``<video>`` reports the RTP timestamp of
every fused frame it shows (``requestVideoFrameCallback`` metadata ``rtpTimestamp``). The two
match exactly because the media engine sends each fused frame with the very RTP timestamp the
camera frame arrived with. Three steps make that so:

1. Receiving: aiortc's receiver rebases RTP timestamps to start at 0 (``TimestampMapper``).
   ``CameraTimestampMapper`` (installed on the session's video receiver) keeps them as they
   arrived, only unwrapped past 2**32 so that they keep increasing: a decoded frame's ``pts``
   (time base 1/90000) *is* its camera RTP timestamp.
2. Processing: the pipeline gives the fused (or "service paused") frame the camera frame's
   time as ``wire_pts``: microseconds, rounded up. PyAV rebases a frame to the encoder's
   time base (1/1000000 for VP8) in place and aiortc converts back to 90 kHz with
   truncation; a 90 kHz ``pts`` would come back one tick low about half the time, the rounded-up
   microsecond one comes back exact.
3. Sending: aiortc's sender adds a random ``timestamp_origin`` to every frame's ``pts``
   (``RTCRtpSender._run_rtp``). For senders registered with ``send_camera_timestamps`` that
   origin is 0, so the RTP timestamp on the wire is the camera's own (mod 2**32). The
   randomness RFC 3550 asks for is still there: it is the browser's random origin.

Exact for VP8, the kiosk's codec. aiortc's H.264 encoder works in a 1/30 s time base, so with
H.264 the RTP timestamp is the camera's rounded to a multiple of 3000 (the nearest 1/30 s):
match a shown frame to the sent frame whose timestamp is nearest. libvpx refuses a ``pts``
that does not increase; if the camera's timestamps ever jump back (a new camera track), the
outgoing track shifts later frames forward by a constant (``FusedVideoTrack``) and the match
is lost until the next session.

The page therefore matches ``rtpTimestamp`` of a shown frame with the one it sent; a camera
frame that the newest-frame reader skipped simply never comes back.

Like the jitter buffer, this reaches into aiortc's internals and is pinned to aiortc 1.16.0
(``tests/unit/test_jitterbuffer.py`` fails when the relied-on source changes).
"""

import fractions
import sys
import weakref

import aiortc.rtcrtpsender as rtcrtpsender_module
from aiortc.rtcrtpreceiver import RTCRtpReceiver, TimestampMapper
from aiortc.rtcrtpsender import RTCRtpSender

from media_engine.jitterbuffer import require_pinned_aiortc

RTP_TIMESTAMP_MODULO = 1 << 32
VIDEO_CLOCK_RATE = 90000
_HALF = 1 << 31


class CameraTimestampMapper(TimestampMapper):
    """RTP timestamps as they arrived, unwrapped (never rebased to 0)."""

    def __init__(self) -> None:
        super().__init__()
        self._cycles = 0

    def map(self, timestamp: int) -> int:
        if self._last is not None and timestamp < self._last - _HALF:
            self._cycles += 1  # wrapped past 2**32
        elif self._last is not None and timestamp > self._last + _HALF:
            # a late frame from before a wrap: keep it in the previous cycle
            return timestamp + (self._cycles - 1) * RTP_TIMESTAMP_MODULO
        self._last = timestamp
        return timestamp + self._cycles * RTP_TIMESTAMP_MODULO


def keep_camera_timestamps(receiver: RTCRtpReceiver) -> None:
    """Decoded frames from this receiver carry their RTP timestamp as ``pts``."""
    require_pinned_aiortc()
    receiver._RTCRtpReceiver__timestamp_mapper = CameraTimestampMapper()  # type: ignore[attr-defined]


_STOCK_RANDOM32 = rtcrtpsender_module.random32
_RUN_RTP_CODE = RTCRtpSender._run_rtp.__code__
_camera_clock_senders: "weakref.WeakSet[RTCRtpSender]" = weakref.WeakSet()


def _random32() -> int:
    """aiortc's ``random32`` for rtcrtpsender.py, except 0 as the timestamp origin of the
    senders registered with ``send_camera_timestamps`` (SSRCs stay random)."""
    caller = sys._getframe(1)
    if caller.f_code is _RUN_RTP_CODE and caller.f_locals.get("self") in _camera_clock_senders:
        return 0
    return _STOCK_RANDOM32()


def send_camera_timestamps(sender: RTCRtpSender) -> None:
    """This sender puts ``pts mod 2**32`` on the wire as the RTP timestamp (no random origin).

    Call it before the sender starts (before ``setLocalDescription``/``setRemoteDescription``
    completes the connection).
    """
    require_pinned_aiortc()
    if rtcrtpsender_module.random32 is not _random32:
        rtcrtpsender_module.random32 = _random32
    _camera_clock_senders.add(sender)


WIRE_TIME_BASE = fractions.Fraction(1, 1_000_000)


def wire_pts(pts: int, time_base: fractions.Fraction) -> int:
    """The ``pts`` (in ``WIRE_TIME_BASE``) that aiortc's VP8 sender turns back into exactly
    this camera frame's 90 kHz RTP timestamp."""
    ticks = pts * time_base * VIDEO_CLOCK_RATE
    if ticks.denominator != 1:
        ticks = fractions.Fraction(round(ticks))
    # ceil(ticks * 1e6 / 90000): int(us * 90000 / 1e6) is then ticks again.
    return -((-int(ticks) * 100) // 9)


def rtp_timestamp(pts: int, time_base: fractions.Fraction = WIRE_TIME_BASE) -> int:
    """The RTP timestamp on the wire for a frame with this ``pts`` (VP8, origin 0)."""
    return int(pts * time_base * VIDEO_CLOCK_RATE) % RTP_TIMESTAMP_MODULO
