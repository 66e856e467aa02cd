"""Expression fidelity: the engines' output shows the visitor's blinks, mouth and head turn.

A sequence made from a real photograph (scikit-image's astronaut) turns, blinks and opens its
mouth; perception runs on the input (driving the engine, as in a session) and again on the
engine's output, and the output's measures must follow the input's.
"""

import functools

import cv2
import numpy as np
import pytest
from skimage import data

from media_engine.engines.registry import create_engine
from media_engine.perception import Perceiver
from tests.fidelity import FRAMES, measure_fidelity, pearson, sequence

MIN_CORRELATION = 0.9


@functools.cache
def astronaut_sequence():
    image = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    perceiver = Perceiver()
    face = None
    for i in range(4):
        face = perceiver.process(image, timestamp=i / 30)
    assert face is not None
    return sequence(image, face.landmarks)


def clocked(perceiver: Perceiver):
    """Perceive frames as a 30 fps stream (the smoothing filter sees real frame times)."""
    frame_no = iter(range(1 << 30))
    return lambda frame: perceiver.process(frame, timestamp=next(frame_no) / 30)


def run_engine(name: str):
    frames, _ = astronaut_sequence()
    engine = create_engine(name)
    return measure_fidelity(
        frames,
        clocked(Perceiver()),
        engine.render,
        # The output is measured as it is, without smoothing of its own.
        clocked(Perceiver(smoothing=False)),
    )


def test_the_sequence_itself_blinks_turns_and_opens_the_mouth():
    frames, expressions = astronaut_sequence()
    perceive = clocked(Perceiver())
    measures = [perceive(f).measures for f in frames]
    assert len(frames) == FRAMES
    assert pearson([e.mouth for e in expressions], [m.mouth_open for m in measures]) > 0.85
    assert pearson([e.yaw for e in expressions], [m.yaw for m in measures]) < -0.9
    eyes = [(m.left_eye_open + m.right_eye_open) / 2 for m in measures]
    assert pearson([e.blink for e in expressions], eyes) < -0.3


@pytest.mark.parametrize("name", ["avatar", "swap"])
def test_output_follows_the_visitors_expressions(name):
    fidelity = run_engine(name)
    assert fidelity.frames_with_face == FRAMES
    assert fidelity.eye >= MIN_CORRELATION, fidelity
    assert fidelity.mouth >= MIN_CORRELATION, fidelity
    assert fidelity.yaw >= MIN_CORRELATION, fidelity


def test_blur_leaves_no_face_to_find():
    fidelity = run_engine("blur")
    assert fidelity.frames_with_face <= FRAMES // 5


def test_the_avatar_is_not_the_visitor():
    """The avatar's output never contains the camera's face pixels."""
    frames, _ = astronaut_sequence()
    perceive = clocked(Perceiver())
    engine = create_engine("avatar")
    for frame in frames[:10]:
        face = perceive(frame)
        out = engine.render(frame.copy(), face)
        x, y, w, h = (int(v) for v in face.box)
        inside = np.abs(out[y : y + h, x : x + w].astype(int) - frame[y : y + h, x : x + w])
        assert inside.mean() > 20
