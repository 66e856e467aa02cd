"""A new target bitrate for a running libvpx VP8 encoder, in place (no new context, no
keyframe).

FFmpeg 8's libvpx wrapper (PyAV 18.1) reads ``bit_rate`` only when the context opens, so
aiortc rebuilds the encoder on a rate change over 10 %, and a new context starts with a
keyframe. libvpx itself changes the rate of a running encoder with
``vpx_codec_enc_config_set`` (what libwebrtc's and Chromium's VP8 encoders call), but
neither FFmpeg nor PyAV expose the ``vpx_codec_ctx_t``. ``retarget`` reaches it through
ctypes, on the libvpx and libavcodec that PyAV bundles (``av.libs``: the very libraries
that run the context), and checks every step against what it must find there:

1. PyAV's ``CodecContext`` keeps its ``AVCodecContext *`` right after its Cython vtable
   (the 4th pointer of the object); its first field must be ``avcodec_get_class()``;
2. ``AVCodecContext.priv_data`` (offset 32, unchanged since FFmpeg 1.0) is libvpxenc's
   ``VPxContext``: its ``AVClass`` must be named ``libvpx-vp8 encoder``, and its next
   field is the ``vpx_codec_ctx_t`` (its name must be ``WebM Project VP8 Encoder …``);
3. ``vpx_codec_ctx_t.priv`` is the encoder's own state, which holds a copy of the
   ``vpx_codec_enc_cfg_t`` the context was opened with (FFmpeg's own was on its stack):
   found by its fingerprint (frame size, CBR, the quantizer range, ``kf_max_dist``, the
   current target in kb/s), copied (exactly its size, which ``vpx_codec_enc_config_default``
   shows), its ``rc_target_bitrate`` changed, and handed to ``vpx_codec_enc_config_set``.

``bound_keyframes`` reaches the same context to set libvpx's keyframe bound
(``VP8E_SET_MAX_INTRA_BITRATE_PCT`` through ``vpx_codec_control``) once a stream's first,
full keyframe is out (media_engine/vp8.py).

Anything that does not match returns False (the caller rebuilds the context, as aiortc
does); nothing is written into libvpx's memory except through ``vpx_codec_enc_config_set``.
Call it from the thread that encodes (aiortc's encoder thread). Layout offsets are those of
PyAV 18.1 and libvpx 1.16 (``vpx_encoder.h``) on 64-bit Linux; with any other version it
does nothing (returns False); ``tests/unit/test_vpxrate.py`` checks that
the rate of a running encoder follows.
"""

import ctypes
import functools
import glob
import os
from typing import Any

import av

# The layouts read here: PyAV's CodecContext object, libvpx's structs (see above).
PYAV_VERSION, LIBVPX_VERSION = "18.1.0", b"v1.16."
VPX_CBR = 1
VP8E_SET_MAX_INTRA_BITRATE_PCT = 26  # vp8cx.h's control id
_CFG_MAX = 2048  # room for vpx_codec_enc_cfg_t when measuring it (504 B in libvpx 1.16)
# vpx_codec_enc_cfg_t offsets (bytes): g_w, g_h, rc_end_usage, rc_target_bitrate (kb/s),
# rc_min_quantizer, rc_max_quantizer, kf_max_dist
_G_W, _G_H, _END_USAGE, _TARGET, _QMIN, _QMAX, _KF_MAX = 12, 16, 72, 112, 116, 120, 168
_SCAN_WORDS = 256  # where the cfg copy may start in the encoder's state (found at 216 B)


@functools.cache
def _libraries() -> tuple[Any, Any] | None:
    """PyAV's own libvpx and libavcodec (already loaded by PyAV: the same handles); None
    unless they are the versions whose layouts this module reads."""
    if av.__version__ != PYAV_VERSION:
        return None
    folder = os.path.join(os.path.dirname(av.__file__), os.pardir, "av.libs")
    vpx, avcodec = glob.glob(folder + "/libvpx-*.so*"), glob.glob(folder + "/libavcodec-*.so*")
    if len(vpx) != 1 or len(avcodec) != 1:
        return None
    libvpx, libavcodec = ctypes.CDLL(vpx[0]), ctypes.CDLL(avcodec[0])
    libavcodec.avcodec_get_class.restype = ctypes.c_void_p
    libvpx.vpx_codec_enc_config_set.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    libvpx.vpx_codec_enc_config_set.restype = ctypes.c_int
    libvpx.vpx_codec_control_.restype = ctypes.c_int  # variadic: arguments typed per call
    libvpx.vpx_codec_version_str.restype = ctypes.c_char_p
    libvpx.vpx_codec_vp8_cx.restype = ctypes.c_void_p
    libvpx.vpx_codec_enc_config_default.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint]
    if not libvpx.vpx_codec_version_str().startswith(LIBVPX_VERSION):
        return None
    return libvpx, libavcodec


@functools.cache
def _config_size() -> int | None:
    """sizeof(vpx_codec_enc_cfg_t): the bytes ``vpx_codec_enc_config_default`` writes over
    two different fills (the copy taken from the encoder's state is exactly this long)."""
    libraries = _libraries()
    if libraries is None:
        return None
    ends = []
    for fill in (0xAB, 0x54):
        buffer = ctypes.create_string_buffer(bytes([fill]) * _CFG_MAX, _CFG_MAX)
        if libraries[0].vpx_codec_enc_config_default(libraries[0].vpx_codec_vp8_cx(), buffer, 0):
            return None
        ends.append(max((i + 1 for i, b in enumerate(buffer.raw) if b != fill), default=0))
    size = -(-max(ends) // 8) * 8
    return size if _TARGET < size < _CFG_MAX else None


def _pointer(address: int) -> int:
    return ctypes.c_void_p.from_address(address).value or 0


def _string(address: int) -> bytes:
    """The C string whose pointer is stored at ``address``."""
    if not address:
        return b""
    return ctypes.c_char_p.from_address(address).value or b""


def _kbps(bitrate: int) -> int:
    """b/s to libvpx's kb/s, rounded as FFmpeg does (``AV_ROUND_NEAR_INF``)."""
    return max(1, (int(bitrate) + 500) // 1000)


def vpx_context(codec: Any) -> int | None:
    """The address of an open libvpx VP8 encoder's ``vpx_codec_ctx_t``, or None."""
    libraries = _libraries()
    if libraries is None or not getattr(codec, "is_open", False):
        return None
    av_context = _pointer(id(codec) + 3 * ctypes.sizeof(ctypes.c_void_p))
    if not av_context or _pointer(av_context) != libraries[1].avcodec_get_class():
        return None
    private = _pointer(av_context + 32)
    if not private or _string(_pointer(private)) != b"libvpx-vp8 encoder":
        return None
    context = private + ctypes.sizeof(ctypes.c_void_p)
    if not _string(context).startswith(b"WebM Project VP8 Encoder"):
        return None
    return context


def _config_copy(context: int, codec: Any) -> ctypes.Array | None:
    """A copy of the encoder's current ``vpx_codec_enc_cfg_t``, found by its fingerprint."""
    state, size = _pointer(context + 48), _config_size()  # vpx_codec_ctx_t.priv
    if not state or size is None:
        return None
    words = (ctypes.c_uint32 * (_SCAN_WORDS + 48)).from_address(state)
    wanted = {
        _G_W: codec.width,
        _G_H: codec.height,
        _END_USAGE: VPX_CBR,
        _TARGET: _kbps(codec.bit_rate),
        _QMIN: codec.qmin,
        _QMAX: codec.qmax,
        _KF_MAX: codec.gop_size,
    }
    for start in range(_SCAN_WORDS):  # bounded; reads stop at the first match
        if all(words[start + offset // 4] == value for offset, value in wanted.items()):
            return ctypes.create_string_buffer(ctypes.string_at(state + start * 4, size), size)
    return None


def retarget(codec: Any, bitrate: int) -> bool:
    """Aim this open libvpx VP8 ``CodecContext`` at ``bitrate`` (b/s) without a new context;
    False (nothing changed) when the context is not what this module expects."""
    libraries = _libraries()
    context = vpx_context(codec)
    config = _config_copy(context, codec) if context else None
    if config is None or libraries is None:
        return False
    ctypes.c_uint32.from_buffer(config, _TARGET).value = _kbps(bitrate)
    if libraries[0].vpx_codec_enc_config_set(context, config) != 0:
        return False
    codec.bit_rate = int(bitrate)
    return True


def in_place_available() -> bool:
    """Whether this process's PyAV and libvpx are those this module can reach into."""
    return _libraries() is not None and _config_size() is not None


def bound_keyframes(codec: Any, percent: int) -> bool:
    """From now on, a keyframe of this open libvpx VP8 ``CodecContext`` gets at most
    ``percent`` % of a frame's share of the target (libvpx's ``rc_max_intra_bitrate_pct``,
    through ``vpx_codec_control``); False (nothing changed) where the context is not what
    this module expects."""
    libraries = _libraries()
    context = vpx_context(codec)
    if libraries is None or context is None:
        return False
    answer = libraries[0].vpx_codec_control_(
        ctypes.c_void_p(context),
        ctypes.c_int(VP8E_SET_MAX_INTRA_BITRATE_PCT),
        ctypes.c_uint(int(percent)),
    )
    return answer == 0
