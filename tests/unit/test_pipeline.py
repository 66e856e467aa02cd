"""FramePipeline: label on every frame, odd and tiny sizes, paused picture, pts kept."""

import fractions

import av
import numpy as np
import pytest

from media_engine.engines.registry import create_engine
from media_engine.label import apply_label
from media_engine.paused import paused_frame
from media_engine.pipeline import FramePipeline, fit_size
from media_engine.rtptime import rtp_timestamp
from tests.support import framestamp


def camera_frame(width: int, height: int, pts: int = 123456789) -> av.VideoFrame:
    # smooth colours: yuv420p keeps them (noise would not survive chroma subsampling)
    y, x = np.mgrid[0:height, 0:width]
    bgr = np.stack(
        [x * 200 // max(1, width) + 20, y * 200 // max(1, height) + 20, np.full_like(x, 120)],
        axis=-1,
    ).astype(np.uint8)
    frame = av.VideoFrame.from_ndarray(bgr, format="bgr24").reformat(format="yuv420p")
    frame.pts = pts
    frame.time_base = fractions.Fraction(1, 90000)
    return frame


def luma(bgr: np.ndarray) -> np.ndarray:
    return bgr.astype(float) @ np.array([0.114, 0.587, 0.299])


@pytest.mark.parametrize(
    "size", [(640, 480), (641, 479), (1, 1), (2, 1), (3, 5), (17, 9), (1281, 721)]
)
def test_every_size_comes_back_labelled_with_the_same_pts(size):
    width, height = size
    pipeline = FramePipeline(create_engine("label"))
    source = camera_frame(width, height)
    out = pipeline.process(source, fusion_allowed=True)
    assert (out.width, out.height) == size
    assert rtp_timestamp(out.pts, out.time_base) == source.pts % 2**32
    expected = apply_label(source.to_ndarray(format="bgr24"))
    got = out.to_ndarray(format="bgr24")
    # compare brightness: yuv420p keeps it per pixel (colour is shared by 2×2 pixels)
    # (the label covers ~3% of a 640×480 frame: a missing label fails the 99th percentile;
    # sharp text edges may differ more after chroma subsampling)
    assert np.percentile(np.abs(luma(got) - luma(expected)), 99) < 12
    assert set(pipeline.times.summary()) >= {"to_bgr", "render", "label", "to_frame", "total"}


def test_the_label_really_is_burned_in():
    pipeline = FramePipeline(create_engine("label"))
    source = camera_frame(640, 480)
    plain = source.to_ndarray(format="bgr24")
    got = pipeline.process(source, fusion_allowed=True).to_ndarray(format="bgr24")
    assert np.abs(got.astype(int) - plain.astype(int)).mean() > 1  # something was drawn


def test_paused_frames_never_show_the_camera():
    calls = []
    pipeline = FramePipeline(create_engine("label"), perceive=lambda bgr: calls.append(1))
    source = camera_frame(640, 480, pts=42)
    out = pipeline.process(source, fusion_allowed=False)
    assert rtp_timestamp(out.pts, out.time_base) == 42
    got = out.to_ndarray(format="bgr24").astype(int)
    assert np.abs(got - paused_frame(640, 480).astype(int)).mean() < 4
    assert calls == []  # no perception on a paused kiosk
    assert pipeline.paused_frames == 1


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (641, 479), (1920, 1080)])
def test_the_paused_picture_fits_any_size(size):
    picture = paused_frame(*size)
    assert picture.shape == (size[1], size[0], 3)
    assert not picture.flags.writeable


def test_processing_size_scales_down_and_perception_sees_that_size():
    seen = []
    pipeline = FramePipeline(
        create_engine("label"),
        perceive=lambda bgr: seen.append(bgr.shape) or None,
        processing_size=(320, 240),
    )
    out = pipeline.process(camera_frame(640, 480), fusion_allowed=True)
    assert (out.width, out.height) == (320, 240)
    assert seen == [(240, 320, 3)]
    assert "scale" in pipeline.times.summary() and "perceive" in pipeline.times.summary()


def test_the_last_frames_stage_times_are_kept_for_the_bench():
    pipeline = FramePipeline(create_engine("label"), perceive=lambda bgr: None,
                             processing_size=(320, 240))  # fmt: skip
    pipeline.process(camera_frame(640, 480), fusion_allowed=True)
    last = pipeline.last_times
    assert set(last) == {"to_bgr", "scale", "perceive", "render", "label", "to_frame", "total"}
    assert all(ms >= 0 for ms in last.values())
    assert last["total"] >= sum(ms for stage, ms in last.items() if stage != "total")
    # A frame without scaling or perception reports only its own stages.
    pipeline.processing_size, pipeline.perceive = None, None
    pipeline.process(camera_frame(640, 480), fusion_allowed=True)
    assert set(pipeline.last_times) == {"to_bgr", "render", "label", "to_frame", "total"}


def test_fit_size():
    assert fit_size(640, 480, None) == (640, 480)
    assert fit_size(640, 480, (1280, 720)) == (640, 480)  # never scales up
    assert fit_size(1280, 720, (640, 360)) == (640, 360)
    assert fit_size(1280, 720, (640, 480)) == (640, 360)
    assert fit_size(3, 1, (1, 1)) == (1, 1)


class WrongSizeEngine:
    name = "wrong"
    required_assets = ()
    needs_identity = False

    def render(self, frame, face):
        return frame[:10, :10]


def test_an_engine_returning_the_wrong_shape_is_a_clear_error():
    pipeline = FramePipeline(WrongSizeEngine())
    with pytest.raises(ValueError, match="engine 'wrong' returned"):
        pipeline.process(camera_frame(64, 48), fusion_allowed=True)


class ReadOnlyEngine:
    name = "readonly"
    required_assets = ()
    needs_identity = False

    def render(self, frame, face):
        out = frame.copy()
        out.setflags(write=False)
        return out


def test_a_read_only_engine_result_is_still_labelled():
    out = FramePipeline(ReadOnlyEngine()).process(camera_frame(64, 48), fusion_allowed=True)
    assert (out.width, out.height) == (64, 48)


@pytest.mark.parametrize("number", [0, 1, 4242, 65535, 70000])
def test_framestamp_round_trip_and_survives_scaling(number):
    frame = np.full((480, 640, 3), 128, np.uint8)
    framestamp.stamp(frame, number)
    assert framestamp.read(frame) == number % 65536
    import cv2

    assert framestamp.read(cv2.resize(frame, (320, 240), interpolation=cv2.INTER_AREA)) == (
        number % 65536
    )


def test_framestamp_reads_none_without_a_stamp():
    assert framestamp.read(np.full((480, 640, 3), 128, np.uint8)) is None
    assert framestamp.read(np.zeros((480, 640, 3), np.uint8)) is None
    assert framestamp.read(np.full((480, 640, 3), 255, np.uint8)) is None
    assert framestamp.read(paused_frame(640, 480)) is None
    assert framestamp.read(np.zeros((10, 10, 3), np.uint8)) is None
    frame = framestamp.stamp(np.zeros((480, 640, 3), np.uint8), 1234)
    frame[16:48, 464:624] = 255 - frame[16:48, 464:624]  # every bit flipped: check fails
    assert framestamp.read(frame) is None
