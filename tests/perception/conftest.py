"""Real face images for the perception tests (scikit-image's astronaut, BGR)."""

import cv2
import numpy as np
import pytest
import skimage.data


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """The astronaut portrait (512x512), BGR uint8."""
    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="session")
def astronaut_640(astronaut: np.ndarray) -> np.ndarray:
    """The astronaut scaled into a 640x480 camera frame."""
    return cv2.resize(astronaut, (640, 480), interpolation=cv2.INTER_AREA)
