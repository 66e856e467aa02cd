"""The check the call tests use to say a received frame shows the "AI-generated" label
(``tests/support/visible_label.py``): it must hold on every labelled frame a codec can
deliver, the first low-rate keyframe included, and on no unlabelled picture."""

import av
import cv2
import numpy as np
import pytest
from skimage import data

from media_engine.label import apply_label, label_region
from media_engine.paused import paused_frame
from media_engine.vp8 import vp8_options
from tests.support.visible_label import carries_label

PICTURES = ["astronaut", "chelsea", "coffee", "camera", "page", "text", "checkerboard", "moon"]
SIZES = [(320, 240), (640, 480), (1280, 720)]


def picture(name: str, size: tuple[int, int]) -> np.ndarray:
    image = getattr(data, name)()
    if image.ndim == 2:
        image = np.dstack([image] * 3)
    return cv2.resize(np.ascontiguousarray(image[:, :, ::-1]), size)


def jpeg(bgr: np.ndarray, quality: int) -> np.ndarray:
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)


def bounded_vp8_keyframe(bgr: np.ndarray, bitrate: int) -> np.ndarray:
    """The frame a receiver decodes from a fresh VP8 encoder's keyframe held to the kiosk's
    keyframe bound (a keyframe after a PLI; before 2026-12-07 also the stream's first)."""
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height = bgr.shape[1], bgr.shape[0]
    encoder.bit_rate, encoder.pix_fmt = bitrate, "yuv420p"
    encoder.qmin, encoder.qmax = 2, 56
    encoder.options = vp8_options(bitrate, full_first_keyframe=False)
    frame = av.VideoFrame.from_ndarray(bgr, format="bgr24").reformat(format="yuv420p")
    packets = encoder.encode(frame) + encoder.encode(None)
    decoder = av.CodecContext.create("vp8", "r")
    decoded = [f for packet in packets[:1] for f in decoder.decode(packet)]
    return decoded[0].to_ndarray(format="bgr24")


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", PICTURES)
def test_a_labelled_frame_shows_the_label_even_after_a_harsh_codec(name, size):
    labelled = apply_label(picture(name, size))
    assert carries_label(labelled)
    assert carries_label(jpeg(labelled, 10))


@pytest.mark.parametrize("size", SIZES)
def test_a_starved_vp8_keyframe_still_shows_the_label(size):
    labelled = apply_label(picture("astronaut", size))
    decoded = bounded_vp8_keyframe(labelled, 150_000)
    x, y, w, h = label_region(*size)
    blurred = np.abs(decoded[y : y + h, x : x + w].astype(int) - labelled[y : y + h, x : x + w])
    assert blurred.mean() > 3, "the keyframe is a lossy one (else this test proves nothing)"
    assert carries_label(decoded)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", PICTURES)
def test_an_unlabelled_picture_never_shows_the_label(name, size):
    plain = picture(name, size)
    assert not carries_label(plain)
    assert not carries_label(jpeg(plain, 10))


@pytest.mark.parametrize("size", SIZES)
def test_a_label_somewhere_else_is_not_the_label(size):
    width, height = size
    frame = picture("coffee", size)
    shifted = apply_label(frame.copy())
    x, y, w, h = label_region(width, height)
    frame[y - h : y, x : x + w] = shifted[y : y + h, x : x + w]  # one label height higher
    assert not carries_label(frame)


@pytest.mark.parametrize("size", SIZES)
def test_the_paused_still_and_flat_frames_are_not_labelled(size):
    assert not carries_label(paused_frame(*size))
    for grey in (0, 128, 255):
        assert not carries_label(np.full((size[1], size[0], 3), grey, np.uint8))


@pytest.mark.parametrize("shape", [(1, 1, 3), (16, 16, 3), (7, 3000, 3)])
def test_tiny_frames_are_answered_without_error(shape):
    assert carries_label(np.zeros(shape, np.uint8)) is False
