"""The perceiver finds the astronaut's face and reports its stages."""

import numpy as np

from media_engine import runtime
from media_engine.perception.perceiver import Perceiver
from media_engine.perception.types import Face


def test_astronaut_face_is_found(astronaut_640: np.ndarray) -> None:
    perceiver = Perceiver()
    face = perceiver.process(astronaut_640, timestamp=0.0)
    assert isinstance(face, Face)
    assert face.landmarks.shape == (468, 3)
    assert face.landmarks.dtype == np.float32
    x, y, w, h = face.box
    # The astronaut's face is in the upper middle of the picture.
    assert 250 < x + w / 2 < 340 and 100 < y + h / 2 < 200
    assert 80 < w < 200
    assert face.score > 0.9
    assert perceiver.timings.detected
    assert perceiver.timings.landmarks_ms > 0
    assert perceiver.stats()["provider"] in ("CPUExecutionProvider", "CUDAExecutionProvider")
    assert set(runtime.providers_in_use()) >= {"face_detection_short_range", "face_landmark"}
