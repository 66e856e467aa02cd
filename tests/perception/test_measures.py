"""The measures move the right way when the real face is warped: eyes closed, mouth opened,
head turned, tilted, nodded."""

import cv2
import numpy as np
import pytest

from media_engine.perception import topology as t
from media_engine.perception.measures import measure
from media_engine.perception.perceiver import Perceiver
from media_engine.perception.types import Face, Measures
from tests.perception import warps


def perceive(frame: np.ndarray) -> Face:
    face = Perceiver(smoothing=False).process(frame, timestamp=0.0)
    assert face is not None
    return face


@pytest.fixture(scope="module")
def neutral(astronaut: np.ndarray) -> Face:
    return perceive(astronaut)


def test_neutral_face_reads_as_a_face_looking_at_the_camera(neutral: Face) -> None:
    m = neutral.measures
    assert isinstance(m, Measures)
    assert abs(m.yaw) < 8 and abs(m.pitch) < 8 and abs(m.roll) < 8
    assert 0.2 < m.left_eye_open < 0.4 and 0.2 < m.right_eye_open < 0.4
    assert 0.0 <= m.mouth_open < 0.3  # the astronaut smiles with parted lips
    assert 0.3 < m.mouth_width < 0.6
    assert 0.05 < m.brow_raise < 0.25


def test_closing_both_eyes(astronaut: np.ndarray, neutral: Face) -> None:
    closed = warps.close_eye(astronaut, neutral.landmarks, t.RIGHT_EYE)
    closed = warps.close_eye(closed, neutral.landmarks, t.LEFT_EYE)
    m, before = perceive(closed).measures, neutral.measures
    assert m.right_eye_open < before.right_eye_open * 0.85
    assert m.left_eye_open < before.left_eye_open * 0.85
    assert m.mouth_open == pytest.approx(before.mouth_open, abs=0.05)


@pytest.mark.parametrize("eye", ["right", "left"])
def test_closing_one_eye(astronaut: np.ndarray, neutral: Face, eye: str) -> None:
    contour = t.RIGHT_EYE if eye == "right" else t.LEFT_EYE
    m = perceive(warps.close_eye(astronaut, neutral.landmarks, contour)).measures
    name = f"{eye}_eye_open"
    # MediaPipe's mesh model (without the attention refinement) couples the two eyes; the
    # closed one still drops clearly.
    assert getattr(m, name) < getattr(neutral.measures, name) * 0.95


def test_opening_the_mouth(astronaut: np.ndarray, neutral: Face) -> None:
    small = perceive(warps.open_mouth(astronaut, neutral.landmarks, 0.15)).measures
    wide = perceive(warps.open_mouth(astronaut, neutral.landmarks, 0.3)).measures
    assert small.mouth_open > neutral.measures.mouth_open * 1.2
    assert wide.mouth_open > small.mouth_open * 1.15
    # Eyes and head stay as they were.
    assert wide.right_eye_open == pytest.approx(neutral.measures.right_eye_open, rel=0.15)
    assert abs(wide.yaw - neutral.measures.yaw) < 5


def test_mouth_opening_and_closing_while_tracked(astronaut: np.ndarray, neutral: Face) -> None:
    """Speech-like: the mouth opens and closes over frames; the tracked, smoothed measure
    rises and falls with it."""
    amounts = [0.0, 0.1, 0.2, 0.3, 0.2, 0.1, 0.0, 0.0, 0.1, 0.3, 0.3, 0.1, 0.0]
    perceiver = Perceiver()
    readings = []
    for i, amount in enumerate(amounts):
        frame = warps.open_mouth(astronaut, neutral.landmarks, amount) if amount else astronaut
        face = perceiver.process(frame, timestamp=i / 15)
        assert face is not None
        readings.append(face.measures.mouth_open)
    assert np.corrcoef(amounts, readings)[0, 1] > 0.8
    assert perceiver.detector_calls == 1


@pytest.mark.parametrize("yaw", [-20, 20])
def test_head_turn_and_its_mirror_image(astronaut: np.ndarray, neutral: Face, yaw: float):
    turned = warps.turn_head(astronaut, neutral.landmarks, yaw_deg=yaw)
    m = perceive(turned).measures
    mirrored = perceive(cv2.flip(turned, 1)).measures
    assert np.sign(m.yaw) == np.sign(yaw) and abs(m.yaw) > 8
    assert np.sign(mirrored.yaw) == -np.sign(yaw) and abs(mirrored.yaw) > 8
    assert mirrored.yaw == pytest.approx(-m.yaw, abs=5)


@pytest.mark.parametrize("pitch", [-15, 15])
def test_nod(astronaut: np.ndarray, neutral: Face, pitch: float) -> None:
    m = perceive(warps.turn_head(astronaut, neutral.landmarks, pitch_deg=pitch)).measures
    assert np.sign(m.pitch - neutral.measures.pitch) == np.sign(pitch)
    assert abs(m.pitch - neutral.measures.pitch) > 5


def test_measures_of_exact_geometry() -> None:
    """On the canonical face itself, turned by known angles, the pose comes back exactly."""
    canonical = t.canonical_points().astype(np.float64)
    yaw, pitch, roll = np.radians([25.0, -10.0, 15.0])
    # Build the rotation from the conventions: yaw about the vertical axis (nose to the
    # image's right), pitch (up), roll (clockwise in the image, y down).
    ry = np.array([[np.cos(yaw), 0, -np.sin(yaw)], [0, 1, 0], [np.sin(yaw), 0, np.cos(yaw)]])
    rx = np.array(
        [[1, 0, 0], [0, np.cos(pitch), np.sin(pitch)], [0, -np.sin(pitch), np.cos(pitch)]]
    )
    rz = np.array([[np.cos(roll), -np.sin(roll), 0], [np.sin(roll), np.cos(roll), 0], [0, 0, 1]])
    points = canonical @ (ry @ rx @ rz).T * 12.0 + [320, 240, 0]
    m = measure(points)
    assert m.yaw == pytest.approx(25.0, abs=0.5)
    assert m.pitch == pytest.approx(-10.0, abs=0.5)
    assert m.roll == pytest.approx(15.0, abs=0.5)
    # Symmetric face: both eyes equally open; openness does not change with the turn.
    straight = measure(canonical * 12.0)
    assert m.left_eye_open == pytest.approx(m.right_eye_open, rel=1e-6)
    assert m.left_eye_open == pytest.approx(straight.left_eye_open, rel=1e-6)
    assert m.mouth_open == pytest.approx(straight.mouth_open, rel=1e-6)
