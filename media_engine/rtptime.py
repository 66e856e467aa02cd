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
2. Processing: the pipeline copies ``pts`` and ``time_base`` from the camera frame to the fused
   (or "service paused") frame it makes from it.
3. Sending: aiortc's sender adds a random ``timestamp_origin`` to every frame's ``pts``
   (``RTCRtpSender._run_rtp``). For senders registered with ``send_camera_timestamps`` that
   origin is 0, so the RTP timestamp on the wire is ``pts mod 2**32``: the camera's own. The
   randomness RFC 3550 asks for is still there: it is the browser's random origin.

The page therefore matches ``rtpTimestamp`` of a shown frame with the one it sent; a camera
frame that the newest-frame reader skipped simply never comes back.

Like the jitter buffer, this reaches into aiortc's internals and is pinned to aiortc 1.16.0
(``tests/unit/test_jitterbuffer.py`` fails when the relied-on source changes).
"""

import sys
import weakref

import aiortc.rtcrtpsender as rtcrtpsender_module
from aiortc.rtcrtpreceiver import RTCRtpReceiver, TimestampMapper
from aiortc.rtcrtpsender import RTCRtpSender

from media_engine.jitterbuffer import require_pinned_aiortc

RTP_TIMESTAMP_MODULO = 1 << 32
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


def rtp_timestamp(pts: int) -> int:
    """The RTP timestamp on the wire for a frame with this ``pts`` (90 kHz)."""
    return pts % RTP_TIMESTAMP_MODULO
