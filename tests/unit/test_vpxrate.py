"""A running libvpx VP8 encoder changes its rate in place (``media_engine/vpxrate.py``):
the stream follows the new target with no new context and no keyframe."""

import fractions

import av
import cv2
import numpy as np
import pytest
from aiortc.codecs import vpx

from media_engine.vp8 import KioskVp8Encoder, vp8_options
from media_engine.vpxrate import retarget, vpx_context

FPS = 30


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    """A detailed, smooth picture twice as wide as the frame: panned, it costs bits."""
    noise = np.random.default_rng(7).integers(0, 255, (480, 1280, 3), dtype=np.uint8)
    return cv2.normalize(cv2.GaussianBlur(noise, (0, 0), 3), None, 0, 255, cv2.NORM_MINMAX)


def panned(scene: np.ndarray, number: int) -> av.VideoFrame:
    x = (2 * number) % 600
    bgr = np.ascontiguousarray(scene[:, x : x + 640])
    out = av.VideoFrame.from_ndarray(bgr, format="bgr24").reformat(format="yuv420p")
    out.pts, out.time_base = number * 3000, fractions.Fraction(1, 90000)
    return out


def open_codec(bitrate: int) -> av.CodecContext:
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = 640, 480, "yuv420p"
    codec.bit_rate, codec.gop_size, codec.qmin, codec.qmax = bitrate, 3000, 2, 56
    codec.time_base = fractions.Fraction(1, FPS)
    codec.options = vp8_options(bitrate)
    codec.open()
    return codec


def stream(codec, scene, numbers: range) -> tuple[float, int]:
    """(b/s, keyframes) of these frames, after a second to settle on the rate."""
    size = keyframes = 0
    for number in numbers:
        for packet in codec.encode(panned(scene, number)):
            if number >= numbers.start + FPS:
                size += packet.size
                keyframes += bool(packet.is_keyframe)
    return size * 8 * FPS / (len(numbers) - FPS), keyframes


def test_a_running_encoder_follows_a_new_target_without_a_keyframe(scene):
    codec = open_codec(1_000_000)
    before, _ = stream(codec, scene, range(0, 90))
    assert before > 700_000
    assert retarget(codec, 300_000) and codec.bit_rate == 300_000
    after, keyframes = stream(codec, scene, range(90, 180))
    assert after < 0.45 * before and keyframes == 0
    assert retarget(codec, 1_000_000)
    again, keyframes = stream(codec, scene, range(180, 270))
    assert again > 2 * after and keyframes == 0


def test_ffmpeg_alone_keeps_the_rate_it_opened_with(scene):
    """Why ``retarget`` exists: a new ``bit_rate`` on an open context changes nothing."""
    codec = open_codec(1_000_000)
    before, _ = stream(codec, scene, range(0, 90))
    codec.bit_rate = 300_000
    after, _ = stream(codec, scene, range(90, 180))
    assert after > 0.7 * before


def test_what_is_not_an_open_vp8_encoder_is_left_alone():
    closed = av.CodecContext.create("libvpx", "w")
    assert vpx_context(closed) is None and not retarget(closed, 300_000)
    h264 = av.CodecContext.create("libx264", "w")
    h264.width, h264.height, h264.pix_fmt, h264.bit_rate = 64, 64, "yuv420p", 500_000
    h264.time_base = fractions.Fraction(1, FPS)
    h264.open()
    assert vpx_context(h264) is None and not retarget(h264, 300_000)
    assert h264.bit_rate == 500_000


def test_the_kiosk_encoder_changes_its_rate_in_place(scene):
    encoder = KioskVp8Encoder()
    encoder.target_bitrate = 1_000_000
    payloads, _ = encoder.encode(panned(scene, 0))
    first = encoder.codec
    encoder.target_bitrate = 400_000  # a cut of 60 %: aiortc alone would rebuild
    for number in range(1, 10):
        payloads, _ = encoder.encode(panned(scene, number))
        data = vpx.vp8_depayload(payloads[0])
        assert data[0] & 1  # an inter frame: no keyframe
    assert encoder.codec is first and encoder.codec.bit_rate == 400_000
    assert (encoder.retargets, encoder.rebuilds) == (1, 1)
    encoder.target_bitrate = 410_000  # a step under 10 %: applied too (aiortc ignored it)
    encoder.encode(panned(scene, 10))
    assert encoder.codec is first and encoder.codec.bit_rate == 410_000
