"""The VP8 encoder settings of the media worker's outgoing video.

aiortc's ``Vp8Encoder`` is tuned for a camera: libvpx's temporal denoiser at its strongest
(``noise-sensitivity 4``) and speed 6 (``cpu-used -6``). The kiosk's video is rendered (a
fused face on a clean background): the denoiser only blurs it and costs most of the encode
time. ``KioskVp8Encoder`` keeps every aiortc setting (CBR at the target bitrate, the 1 s
buffer, no lag, one token partition, the thread rule) except these:

- ``noise-sensitivity 0``: no denoiser;
- ``cpu-used -6``: libvpx's realtime speed 6, as aiortc (negative: a fixed speed, not
  adapted), stated here because it matters: speed 12 (used until 2026-12-07, ~0.2-0.4 ms a
  frame faster at 640×480) quantized the flat backdrop's faint provenance mark away at
  300 kb/s, so the mark had to be twice as strong there and showed as a cloudiness on
  the backdrop; at speed 6 the mark survives at under half that strength, invisible, and
  the picture is 0.7-1.2 dB better at the same bitrate (docs/provenance.md; BENCHMARKS.md);
- keyframes after a context's first get at most 3 frames' worth of the target bitrate
  (``KEYFRAME_BOUND_PCT``: libvpx's ``rc_max_intra_bitrate_pct``; libwebrtc's VP8 encoder
  sets at least 300). aiortc leaves them unbounded: with the 1 s CBR buffer a keyframe took
  29 kB at 1 Mb/s on a smooth 640×480 test picture (0.23 s of the link; 7 kB with the
  bound), nearly all a 1 Mb/s link's 0.25 s drop-tail buffer holds, so its tail was dropped
  and had to be repaired, and every frame behind it waited. Keyframes come at every PLI.
- the **first** keyframe of a context is not bounded, and the rate control's buffer starts
  full (``rc_init_occupancy``: one second's bits): bounded, the first keyframe was held to
  1.8 kB at 300 kb/s (28 dB), the next frames refined it for half a second, and the
  label's thin text and the provenance mark were lost there (the mark on the first 13–16
  frames with every key; with a full first keyframe on none: BENCHMARKS.md, provenance).
  The bound is set on the running context once the first keyframe is out
  (``vpxrate.bound_keyframes``); where that path is not available the context opens with
  the bound, as before.

A new target bitrate is applied to the running context (``media_engine/vpxrate.py``:
libvpx's ``vpx_codec_enc_config_set``, as libwebrtc does), any step, with no keyframe.
aiortc 1.16 rebuilds the context on a change over 10 % (and ignores smaller ones): PyAV/
FFmpeg 8's libvpx wrapper does not apply a changed ``bit_rate`` to a running context
(checked: the rate stays the old one), and a new context starts with a keyframe, one per
rate step of the sender's controller. Only where the context is not what ``vpxrate``
expects does the encoder fall back to aiortc's rebuild. A new frame size still rebuilds.

Measured at 640×480 on a talking-face clip (``bench/vp8.py``; 2-core machine): at 1.5 Mb/s
the encode takes about half the time of aiortc's settings, at the same bitrate, with a
higher luma PSNR (the denoiser's blur is gone); the figures are in BENCHMARKS.md.

aiortc builds the encoder itself (``RTCRtpSender`` calls ``get_encoder`` when its first
frame comes) and creates the libvpx context inside ``Vp8Encoder.encode``.
``KioskVp8Encoder.encode`` creates that context first, with the same size and bitrate that
aiortc checks, so aiortc's ``encode`` uses it as its own; ``install_kiosk_vp8_encoder``
makes the senders of this process build a ``KioskVp8Encoder`` for VP8 (H.264 and audio are
untouched). Written for exactly ``aiortc==1.16.0`` (the creation block of
``Vp8Encoder.encode`` is copied here); ``tests/unit/test_vp8.py`` pins its source.
"""

import logging
import multiprocessing

from aiortc import rtcrtpsender
from aiortc.codecs import get_encoder
from aiortc.codecs.base import Encoder
from aiortc.codecs.vpx import Vp8Encoder, number_of_threads
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av import CodecContext, VideoFrame
from av.frame import Frame

from media_engine.jitterbuffer import require_pinned_aiortc
from media_engine.vpxrate import bound_keyframes, in_place_available, retarget

logger = logging.getLogger(__name__)

# What differs from aiortc 1.16.0's Vp8Encoder (see the module docstring).
KIOSK_OPTIONS = {"cpu-used": "-6", "noise-sensitivity": "0"}
KEYFRAME_BOUND_PCT = 300  # a keyframe after the first: at most 3 frames' share of the rate


def vp8_options(bitrate: int, *, full_first_keyframe: bool = True) -> dict[str, str]:
    """aiortc's libvpx options for this bitrate, with the kiosk's speed, no denoiser, the
    rate control's buffer full at the start and the keyframe bound (unless the first
    keyframe is to be full: then the bound comes after it, ``KioskVp8Encoder``)."""
    bound = "0" if full_first_keyframe else str(KEYFRAME_BOUND_PCT)
    return {
        # aiortc: rc_buf_sz = 1000 ms; minrate = maxrate = bit_rate is CBR
        "bufsize": str(bitrate),
        "cpu-used": "-6",
        "deadline": "realtime",
        "lag-in-frames": "0",
        "minrate": str(bitrate),
        "maxrate": str(bitrate),
        "noise-sensitivity": "4",
        "overshoot-pct": "15",
        "partitions": "0",
        "static-thresh": "1",
        "undershoot-pct": "100",
        **KIOSK_OPTIONS,
        "max-intra-rate": bound,
        "rc_init_occupancy": str(bitrate),  # one second's bits: the buffer starts full
    }


class KioskVp8Encoder(Vp8Encoder):
    """aiortc's VP8 encoder with the kiosk's libvpx settings.

    ``options`` are the libvpx options the current context was opened with (once open,
    PyAV's ``codec.options`` keeps only those libvpx did not take)."""

    options: dict[str, str] | None = None

    _unreachable = None  # a context whose rate could not be changed in place
    retargets = 0  # rate changes applied in place
    rebuilds = 0  # contexts opened (the first included): each one starts with a keyframe
    _bound_due = False  # the context's first keyframe went out unbounded: bound the next

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        if isinstance(frame, VideoFrame):
            self._retarget(frame)
            if self._needs_codec(frame):
                self.codec = self._build_codec(frame.width, frame.height)
                self.rebuilds += 1
        encoded = super().encode(frame, force_keyframe)
        if self._bound_due and self.codec is not None and self.codec.is_open:
            self._bound_due = False
            if not bound_keyframes(self.codec, KEYFRAME_BOUND_PCT):
                logger.warning("VP8 keyframes stay unbounded: libvpx's control was refused")
        return encoded

    def _retarget(self, frame: VideoFrame) -> None:
        """A new target on a context of the same size: changed in place (no keyframe)."""
        codec = self.codec
        if (
            codec is None
            or not codec.is_open
            or (frame.width, frame.height) != (codec.width, codec.height)
            or self.target_bitrate == codec.bit_rate
            or codec is self._unreachable
        ):
            return
        if retarget(codec, self.target_bitrate):
            self.retargets += 1
        else:  # not tried again on this context: aiortc rebuilds it past 10 %
            self._unreachable = codec

    def _needs_codec(self, frame: VideoFrame) -> bool:
        """Whether aiortc's ``encode`` would (re)create the context for this frame."""
        codec = self.codec
        return (
            codec is None
            or frame.width != codec.width
            or frame.height != codec.height
            or abs(self.target_bitrate - codec.bit_rate) / codec.bit_rate > 0.1
        )

    def _build_codec(self, width: int, height: int):
        codec = CodecContext.create("libvpx", "w")
        codec.width, codec.height = width, height
        codec.bit_rate = self.target_bitrate
        codec.pix_fmt = "yuv420p"
        codec.gop_size = 3000
        codec.qmin, codec.qmax = 2, 56
        self._bound_due = in_place_available()
        self.options = vp8_options(self.target_bitrate, full_first_keyframe=self._bound_due)
        codec.options = dict(self.options)
        codec.thread_count = number_of_threads(width * height, multiprocessing.cpu_count())
        return codec


def kiosk_encoder(codec: RTCRtpCodecParameters) -> Encoder:
    """aiortc's ``get_encoder``, with the kiosk's VP8 encoder."""
    if codec.mimeType.lower() == "video/vp8":
        return KioskVp8Encoder()
    return get_encoder(codec)


def install_kiosk_vp8_encoder() -> None:
    """Every ``RTCRtpSender`` of this process that starts afterwards encodes VP8 with the
    kiosk's settings (idempotent; call it before the sender's first frame)."""
    require_pinned_aiortc()
    if rtcrtpsender.get_encoder is not kiosk_encoder:
        rtcrtpsender.get_encoder = kiosk_encoder
