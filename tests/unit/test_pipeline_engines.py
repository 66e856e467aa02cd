"""Every engine behind the real pipeline (perception on): awkward frames still go out labelled,
and adaptive resolution moves the processing size."""

import fractions

import av
import cv2
import numpy as np
import pytest
from skimage import data

from media_engine.adaptive import AdaptiveResolution, Policy
from media_engine.assembly import build_pipeline
from media_engine.engines.registry import EngineUnavailable

ENGINES = ["avatar", "swap", "blur"]


def astronaut(width: int = 640, height: int = 480) -> np.ndarray:
    return cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (width, height))


def to_frame(bgr: np.ndarray, pts: int = 9000) -> av.VideoFrame:
    fmt = "gray" if bgr.ndim == 2 else "bgr24"
    frame = av.VideoFrame.from_ndarray(bgr, format=fmt).reformat(format="yuv420p")
    frame.pts = pts
    frame.time_base = fractions.Fraction(1, 90000)
    return frame


def scenes() -> dict[str, np.ndarray]:
    face = astronaut()
    two = np.hstack([astronaut(320, 480), astronaut(320, 480)])
    cut = np.zeros_like(face)
    cut[:, :300] = face[:, 340:]  # the face half out of the left edge
    rng = np.random.default_rng(5)
    return {
        "face": face,
        "no face": cv2.GaussianBlur(rng.integers(0, 255, (480, 640, 3), np.uint8), (0, 0), 4),
        "two faces": two,
        "cut by the edge": cut,
        "16x16": cv2.resize(face, (16, 16)),
        "3840x2160": cv2.resize(face, (3840, 2160)),
        "odd width": cv2.resize(face, (641, 479)),
        "gray": cv2.cvtColor(cv2.resize(face, (640, 480)), cv2.COLOR_BGR2GRAY),
    }


@pytest.mark.parametrize("engine", ENGINES)
def test_awkward_frames_still_go_out_labelled(engine):
    pipeline = build_pipeline(engine, None)
    assert pipeline.perceive is not None
    for name, image in scenes().items():
        source = to_frame(image)
        for i in range(3):
            source.pts = 9000 + 3000 * i
            out = pipeline.process(source, fusion_allowed=True)
        assert out.format.name == "yuv420p", name
        h, w = image.shape[:2]
        assert (out.width, out.height) == (w, h) or name == "3840x2160", name
    # Every frame went through the label stage (test_pipeline checks what it burns in).
    assert pipeline.frames == 3 * len(scenes())
    assert "label" in pipeline.times.summary()


def test_a_4k_camera_is_processed_at_the_adaptive_size():
    pipeline = build_pipeline("avatar", None)
    out = pipeline.process(to_frame(scenes()["3840x2160"]), fusion_allowed=True)
    assert (out.width, out.height) == (1280, 720)


def test_perception_is_skipped_for_the_label_engine():
    pipeline = build_pipeline("label", None)
    assert pipeline.perceive is None and pipeline.adaptive is None


def test_insightface_without_a_pack_is_unavailable_with_a_clear_message():
    with pytest.raises(EngineUnavailable, match=r"no insightface model pack installed under"):
        build_pipeline("insightface", None)


def test_slow_processing_moves_the_pipeline_down_the_ladder():
    pipeline = build_pipeline("blur", None)
    # A budget no real machine meets: every frame is over it.
    pipeline.adaptive = AdaptiveResolution(policy=Policy(down_after=2, cooldown=0))
    pipeline.frame_budget_ms = 0.01
    source = to_frame(astronaut(1280, 720))
    sizes = []
    for i in range(8):
        source.pts = 3000 * i
        out = pipeline.process(source, fusion_allowed=True)
        sizes.append((out.width, out.height))
    assert sizes[0] == (1280, 720)
    assert sizes[-1] == (640, 360)
    stats = pipeline.adaptive.stats()
    assert stats["rung"] == "360p" and stats["reason"].startswith("down: processing")


def test_the_session_stats_name_the_provider_the_models_run_on():
    from media_engine import runtime

    label = build_pipeline("label", None)
    assert label.provider == "none"  # no model at all
    blur = build_pipeline("blur", None)
    assert blur.provider == runtime.provider_in_use()
    assert blur.provider.endswith("ExecutionProvider")
