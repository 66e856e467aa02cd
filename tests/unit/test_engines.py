"""Each engine on frames with known landmarks: what changes, what stays, odd inputs."""

import cv2
import numpy as np
import pytest
from skimage import data

from media_engine.engines import face_regions as fr
from media_engine.engines.avatar import AvatarEngine
from media_engine.engines.blur import BlurEngine
from media_engine.engines.mouth import paint_mouth_interior
from media_engine.engines.portraits import default_avatar
from media_engine.engines.registry import EngineUnavailable, create_engine, engine_names
from media_engine.engines.swap import SwapEngine
from media_engine.perception.measures import head_angles, head_rotation
from tests.engine_helpers import face_from_landmarks, open_mouth, placed_landmarks

W, H = 640, 480


def scene() -> np.ndarray:
    """A real photograph as the background (astronaut), 640×480."""
    return cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (W, H))


def oval_mask(landmarks, grow=0.0) -> np.ndarray:
    oval = landmarks[fr.FACE_OVAL, :2].astype(np.float64)
    c = oval.mean(axis=0)
    oval = c + (oval - c) * (1 + grow)
    mask = np.zeros((H, W), np.uint8)
    cv2.fillPoly(mask, [np.round(oval).astype(np.int32)], 1)
    return mask.astype(bool)


@pytest.mark.parametrize("engine_cls", [SwapEngine, BlurEngine])
def test_face_engines_change_the_face_and_not_far_outside(engine_cls):
    frame = scene()
    lm = placed_landmarks(W, H, 220)
    engine = engine_cls.for_identity(None)
    out = engine.render(frame.copy(), face_from_landmarks(lm))
    assert out.shape == frame.shape and out.dtype == np.uint8
    diff = np.abs(out.astype(int) - frame.astype(int)).sum(axis=2)
    inner = oval_mask(lm, grow=-0.15)
    outside = ~oval_mask(lm, grow=0.45)
    assert (diff[inner] > 12).mean() > 0.5
    assert (diff[outside] > 0).mean() < 0.01


def test_swap_keeps_the_visitors_open_mouth():
    frame = scene()
    lm = open_mouth(placed_landmarks(W, H, 220), 0.8)
    paint_mouth_interior(frame, lm[:, :2])  # the visitor's own mouth: dark, teeth, tongue
    out = SwapEngine.for_identity(None).render(frame.copy(), face_from_landmarks(lm))
    mouth = np.zeros((H, W), np.uint8)
    cv2.fillPoly(mouth, [np.round(lm[fr.LIPS_INNER, :2]).astype(np.int32)], 1)
    mouth = cv2.erode(mouth, np.ones((7, 7), np.uint8)).astype(bool)
    assert mouth.sum() > 50
    diff = np.abs(out.astype(int) - frame.astype(int)).sum(axis=2)
    assert np.median(diff[mouth]) < 20


def test_swap_matches_the_scene_colour():
    frame = scene()
    frame[:] = (frame * np.array([0.55, 0.75, 1.25])).clip(0, 255).astype(np.uint8)  # warm light
    lm = placed_landmarks(W, H, 220)
    engine = SwapEngine.for_identity(None)
    face = face_from_landmarks(lm)
    for _ in range(10):  # colour statistics settle over frames
        out = engine.render(frame.copy(), face)
    inner = oval_mask(lm, grow=-0.2)
    out_lab = cv2.cvtColor(out, cv2.COLOR_BGR2LAB)[inner].astype(float).mean(axis=0)
    scene_lab = cv2.cvtColor(frame, cv2.COLOR_BGR2LAB)[inner].astype(float).mean(axis=0)
    raw = default_avatar().image
    raw_lab = cv2.cvtColor(raw, cv2.COLOR_BGR2LAB).reshape(-1, 3).astype(float).mean(axis=0)
    assert np.abs(out_lab - scene_lab)[1:].max() < 6
    assert np.abs(out_lab - scene_lab)[1:].max() < np.abs(raw_lab - scene_lab)[1:].max()


def test_avatar_output_is_the_avatar_and_follows_the_mouth():
    frame = scene()
    lm = placed_landmarks(W, H, 200)
    engine = AvatarEngine.for_identity(None)
    neutral = face_from_landmarks(lm)
    for _ in range(10):
        rest = engine.render(frame.copy(), neutral)
    # The output is the avatar, not the camera.
    assert np.abs(rest.astype(int) - frame.astype(int)).mean() > 30
    lips = engine.last.points[fr.LIPS_OUTER]
    opened = engine.render(frame.copy(), face_from_landmarks(open_mouth(lm, 0.8)))
    x0, y0 = np.floor(lips.min(axis=0)).astype(int)
    x1, y1 = np.ceil(lips.max(axis=0)).astype(int)
    box = lambda img: img[y0 : y1 + 40, x0:x1].astype(int).sum(axis=2)  # noqa: E731
    # The mouth opened: a dark interior appeared between the lips.
    dark_open, dark_rest = (box(opened) < 130).sum(), (box(rest) < 130).sum()
    assert dark_open > dark_rest + 30 and dark_open > 3 * dark_rest
    # Without a face it rests in its neutral pose.
    for _ in range(3):
        again = engine.render(frame.copy(), None)
    assert np.abs(again.astype(int) - rest.astype(int)).mean() < 3


def test_avatar_follows_a_head_tilt():
    lm = placed_landmarks(W, H, 200)
    engine = AvatarEngine.for_identity(None)
    for _ in range(10):
        engine.render(scene(), face_from_landmarks(lm))
    a = np.radians(12)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    tilted = lm.copy()
    tilted[:, :2] = (lm[:, :2] - [W / 2, H / 2]) @ rot.T + [W / 2, H / 2]
    engine.render(scene(), face_from_landmarks(tilted))
    posed = np.column_stack([engine.last.points[:468], engine.last.depth[:468]])
    assert head_angles(head_rotation(posed))[2] == pytest.approx(12, abs=1.0)


@pytest.mark.parametrize("name", ["avatar", "swap", "blur", "label"])
@pytest.mark.parametrize(
    "shape",
    [(16, 16, 3), (2160, 3840, 3), (481, 641, 3), (480, 640), (360, 639, 3)],
    ids=["16x16", "4k", "odd", "gray", "odd-width"],
)
def test_odd_frames_do_not_crash(name, shape):
    engine = create_engine(name)
    frame = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    h, w = shape[:2]
    faces = [None, face_from_landmarks(placed_landmarks(w, h, 0.45 * h))]
    # A face cut by the frame's edge, and one larger than the frame.
    faces.append(face_from_landmarks(placed_landmarks(w, h, 0.6 * h, centre=(0, h * 0.2))))
    faces.append(face_from_landmarks(placed_landmarks(w, h, 3 * h)))
    faces.append(face_from_landmarks(placed_landmarks(w, h, 0.5 * h, centre=(-w, -h))))
    for face in faces:
        out = engine.render(frame.copy(), face)
        assert out.shape[:2] == (h, w) and out.dtype == np.uint8
        assert (out.ndim == 3 and out.shape[2] == 3) or name == "label"


def test_registry_knows_every_engine_and_refuses_unknown_ones():
    assert set(engine_names()) >= {"label", "avatar", "swap", "insightface", "blur"}
    with pytest.raises(EngineUnavailable, match="unknown engine"):
        create_engine("morph")


@pytest.mark.parametrize("engine_cls", [SwapEngine])
def test_the_gpu_render_graph_gives_the_same_frames_as_opencv(engine_cls):
    """The engines' ONNX render path (what runs on CUDA) on the CPU provider, against the
    OpenCV path the engines pick on a CPU. (The layered avatar renders with OpenCV only:
    docs/engines.md.)"""
    from media_engine.engines.render_graph import CpuRenderer, OnnxRenderer

    lm = placed_landmarks(W, H, 220)
    faces = [face_from_landmarks(lm), face_from_landmarks(open_mouth(lm, 0.6))]
    outputs = []
    for renderer_cls in (CpuRenderer, OnnxRenderer):
        engine = engine_cls.for_identity(None)
        kwargs = {"providers": ["CPUExecutionProvider"]} if renderer_cls is OnnxRenderer else {}
        cpu = engine.renderer
        engine.renderer = renderer_cls(cpu.source, lab=cpu.lab, blend=cpu.blend, **kwargs)
        outputs.append([engine.render(scene(), face) for face in faces for _ in range(3)])
    for a, b in zip(*outputs, strict=True):
        diff = np.abs(a.astype(int) - b.astype(int))
        assert diff.mean() < 0.5
        assert np.percentile(diff, 99.9) <= 8


def test_swap_with_an_operators_portrait_finds_its_landmarks_once():
    from media_engine.engines.base import IdentityImage

    portrait = cv2.flip(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), 1)  # a presenter
    engine = create_engine("swap", IdentityImage(7, "Presenter", portrait))
    lm = engine.portrait.landmarks
    assert lm.shape == (468, 3)
    # The landmarks landed on the presenter's face (eyes above the mouth, inside the image).
    assert lm[159, 1] < lm[13, 1] and 100 < lm[1, 0] < 400
    frame = scene()
    out = engine.render(frame.copy(), face_from_landmarks(placed_landmarks(W, H, 220)))
    assert np.abs(out.astype(int) - frame.astype(int)).mean() > 1
    # The next session with the same portrait does not look for them again.
    again = create_engine("swap", IdentityImage(7, "Presenter", portrait.copy()))
    assert again.portrait.landmarks is lm


def test_a_portrait_without_a_face_makes_the_engine_unavailable():
    from media_engine.engines.base import IdentityImage

    blank = np.full((300, 300, 3), 200, np.uint8)
    with pytest.raises(EngineUnavailable, match="no face found in the identity's portrait"):
        create_engine("swap", IdentityImage(8, "Nobody", blank))
