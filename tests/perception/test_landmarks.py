"""The face is found and its 468 points land where a face's parts are, in the right order."""

import math

import cv2
import numpy as np
import pytest

from media_engine.perception import topology as t
from media_engine.perception.perceiver import Perceiver
from media_engine.perception.types import Face


def perceive(frame: np.ndarray) -> Face | None:
    return Perceiver(smoothing=False).process(frame, timestamp=0.0)


def centre(face: Face, indices) -> np.ndarray:
    return face.landmarks[list(indices), :2].mean(0)


def assert_face_in_order(face: Face, up: np.ndarray) -> None:
    """Eyes above the mouth, brows above the eyes, the visitor's left eye on the image's
    right, along the face's own axes (``up`` points from the chin to the forehead)."""
    across = np.array([-up[1], up[0]])  # the image's right when ``up`` is (0, -1)
    right_eye, left_eye = centre(face, t.RIGHT_EYE), centre(face, t.LEFT_EYE)
    mouth, nose = centre(face, t.LIPS_OUTER), face.landmarks[t.NOSE_TIP, :2]
    eyes = (right_eye + left_eye) / 2
    assert (left_eye - right_eye) @ across > 0, "the visitor's left eye must be on the right"
    assert (eyes - nose) @ up > 0, "eyes above the nose"
    assert (nose - mouth) @ up > 0, "nose above the mouth"
    assert (mouth - face.landmarks[t.CHIN, :2]) @ up > 0, "mouth above the chin"
    assert (centre(face, t.RIGHT_BROW) - right_eye) @ up > 0, "brow above the eye"
    assert (centre(face, t.LEFT_BROW) - left_eye) @ up > 0, "brow above the eye"
    assert (face.landmarks[t.FOREHEAD, :2] - eyes) @ up > 0, "forehead above the eyes"
    # Upper lids above lower lids.
    for upper, lower in (*t.RIGHT_EYE_LIDS, *t.LEFT_EYE_LIDS):
        assert (face.landmarks[upper, :2] - face.landmarks[lower, :2]) @ up > 0


def test_astronaut_face_and_points(astronaut: np.ndarray) -> None:
    face = perceive(astronaut)
    assert face is not None
    assert face.landmarks.shape == (468, 3) and face.landmarks.dtype == np.float32
    assert np.isfinite(face.landmarks).all()
    assert face.score > 0.9
    x, y, w, h = face.box
    # The astronaut's face: about 180-270 across and 70-175 down in the 512x512 picture.
    assert 160 < x < 200 and 50 < y < 90 and 80 < w < 130 and 90 < h < 140
    inside = (
        (face.landmarks[:, 0] >= x - 0.5)
        & (face.landmarks[:, 0] <= x + w + 0.5)
        & (face.landmarks[:, 1] >= y - 0.5)
        & (face.landmarks[:, 1] <= y + h + 0.5)
    )
    assert inside.all()
    assert_face_in_order(face, up=np.array([0.0, -1.0]))
    # The points are where the astronaut's eyes and mouth are in the picture.
    assert np.allclose(centre(face, t.RIGHT_EYE), [204, 101], atol=6)
    assert np.allclose(centre(face, t.LEFT_EYE), [247, 104], atol=6)
    assert np.allclose(centre(face, t.LIPS_OUTER), [224, 145], atol=6)


@pytest.mark.parametrize("angle", [-20, -10, 10, 20])
def test_rotated_face(astronaut: np.ndarray, angle: float) -> None:
    """Rotated by ``angle`` degrees (counter-clockwise as shown): found, points in order along
    the turned axes, and the same points as the upright face's, rotated."""
    upright = perceive(astronaut)
    assert upright is not None
    h, w = astronaut.shape[:2]
    rotation = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    face = perceive(cv2.warpAffine(astronaut, rotation, (w, h)))
    assert face is not None
    rad = math.radians(angle)
    assert_face_in_order(face, up=np.array([-math.sin(rad), -math.cos(rad)]))
    expected = upright.landmarks[:, :2] @ rotation[:, :2].T + rotation[:, 2]
    error = np.linalg.norm(face.landmarks[:, :2] - expected, axis=1)
    assert np.median(error) < 3.0, f"median point error {np.median(error):.2f} px"
    # Roll is positive clockwise; the image turned counter-clockwise by ``angle``.
    assert face.measures.roll == pytest.approx(upright.measures.roll - angle, abs=6)


@pytest.mark.parametrize("scale", [0.35, 0.6, 1.5, 2.5])
def test_scaled_face(astronaut: np.ndarray, scale: float) -> None:
    frame = cv2.resize(astronaut, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    upright = perceive(astronaut)
    face = perceive(frame)
    assert face is not None and upright is not None
    assert_face_in_order(face, up=np.array([0.0, -1.0]))
    error = np.linalg.norm(face.landmarks[:, :2] / scale - upright.landmarks[:, :2], axis=1)
    assert np.median(error) < 3.0


@pytest.mark.parametrize(
    "crop",
    [(0, 0, 400, 300), (100, 20, 400, 260), (150, 40, 170, 170), (60, 0, 452, 512)],
)
def test_cropped_frames(astronaut: np.ndarray, crop: tuple[int, int, int, int]) -> None:
    x, y, w, h = crop
    upright = perceive(astronaut)
    face = perceive(astronaut[y : y + h, x : x + w])
    assert face is not None and upright is not None
    error = np.linalg.norm(face.landmarks[:, :2] + [x, y] - upright.landmarks[:, :2], axis=1)
    assert np.median(error) < 3.0
