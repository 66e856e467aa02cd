"""Any frame the camera path can hand over: no crash, a sensible answer; a frame that is not
an image is refused with a clear error."""

import cv2
import numpy as np
import pytest
import skimage.data

from media_engine.perception.perceiver import FrameError, Perceiver


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(np.zeros((480, 640, 3), np.uint8), id="black"),
        pytest.param(np.full((480, 640, 3), 255, np.uint8), id="white"),
        pytest.param(
            np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8), id="noise"
        ),
        pytest.param(cv2.cvtColor(skimage.data.coffee(), cv2.COLOR_RGB2BGR), id="coffee"),
        pytest.param(cv2.cvtColor(skimage.data.rocket(), cv2.COLOR_RGB2BGR), id="rocket"),
        pytest.param(np.zeros((16, 16, 3), np.uint8), id="16x16"),
        pytest.param(np.zeros((1, 1, 3), np.uint8), id="1x1"),
    ],
)
def test_no_face(frame: np.ndarray) -> None:
    perceiver = Perceiver()
    for i in range(3):
        assert perceiver.process(frame, timestamp=i / 30) is None
    assert perceiver.detector_calls == 3


def test_tiny_frame_of_a_face(astronaut: np.ndarray) -> None:
    tiny = cv2.resize(astronaut, (16, 16), interpolation=cv2.INTER_AREA)
    face = Perceiver().process(tiny, 0.0)  # too small to find; must not crash
    if face is not None:
        assert np.isfinite(face.landmarks).all()


def test_4k_frame(astronaut: np.ndarray) -> None:
    """A 3840x2160 frame with the visitor in the middle at kiosk distance."""
    frame = np.full((2160, 3840, 3), 100, np.uint8)
    frame[180:1980, 1020:2820] = cv2.resize(astronaut, (1800, 1800))
    perceiver = Perceiver()
    face = perceiver.process(frame, 0.0)
    assert face is not None
    x, y, w, h = face.box
    scale = 1800 / 512  # the astronaut's face centre is near (225, 125) of 512
    assert abs(x + w / 2 - (1020 + 225 * scale)) < 60
    assert abs(y + h / 2 - (180 + 125 * scale)) < 60
    assert perceiver.process(frame, 0.033) is not None
    assert perceiver.detector_calls == 1


@pytest.mark.parametrize("size", [(641, 481), (639, 479), (333, 517)])
def test_odd_sizes(astronaut: np.ndarray, size: tuple[int, int]) -> None:
    frame = cv2.resize(astronaut, size)
    face = Perceiver().process(frame, 0.0)
    assert face is not None
    assert (face.landmarks[:, 0] < size[0]).all() and (face.landmarks[:, 1] < size[1]).all()


def test_non_contiguous_frame(astronaut: np.ndarray) -> None:
    view = astronaut[:, ::-1]  # a mirrored view, negative strides
    assert Perceiver().process(view, 0.0) is not None


@pytest.mark.parametrize("form", ["2d", "1ch", "bgra"])
def test_grayscale_and_alpha(astronaut: np.ndarray, form: str) -> None:
    gray = cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY)
    frame = {
        "2d": gray,
        "1ch": gray[:, :, None],
        "bgra": cv2.cvtColor(astronaut, cv2.COLOR_BGR2BGRA),
    }[form]
    colour = Perceiver(smoothing=False).process(astronaut, 0.0)
    face = Perceiver(smoothing=False).process(frame, 0.0)
    assert face is not None and colour is not None
    error = np.linalg.norm(face.landmarks[:, :2] - colour.landmarks[:, :2], axis=1)
    assert np.median(error) < 3.0


@pytest.mark.parametrize("direction", [-1, 1])
def test_face_cut_by_the_frame_edge(astronaut: np.ndarray, direction: int) -> None:
    """The visitor walks out sideways: the track holds while the face is cut by the frame's
    edge (its points reach past the edge, finite), and ends once the face has gone."""
    h, w = astronaut.shape[:2]
    perceiver = Perceiver()
    cut = 0
    for i in range(40):
        shift = direction * 10 * i
        frame = cv2.warpAffine(astronaut, np.float32([[1, 0, shift], [0, 1, 0]]), (w, h))
        face = perceiver.process(frame, timestamp=i / 30)
        if face is None:
            break
        assert np.isfinite(face.landmarks).all()
        xs = face.landmarks[:, 0]
        if xs.min() < 0 or xs.max() > w:
            cut += 1
    assert cut >= 3
    assert perceiver.detector_calls <= 2  # tracked, not re-detected, while it was cut
    if direction < 0:
        assert face is None  # gone out of the left edge; the right walk ends still cut


def test_face_leaving_the_frame(astronaut_640: np.ndarray) -> None:
    perceiver = Perceiver()
    seen = []
    for i in range(25):
        m = np.float32([[1, 0, 25 * i], [0, 1, 0]])
        frame = cv2.warpAffine(astronaut_640, m, (640, 480))
        seen.append(perceiver.process(frame, timestamp=i / 30) is not None)
    assert seen[0] and not seen[-1]  # found at first, gone once it has left
    # Once lost, nothing is found and the detector looks every frame.
    assert perceiver.timings.detected


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((480, 640, 3), np.float32), "uint8"),
        (np.zeros((0, 640, 3), np.uint8), "empty"),
        (np.zeros((480, 0), np.uint8), "empty"),
        (np.zeros((480, 640, 2), np.uint8), "HxW"),
        (np.zeros((2, 480, 640, 3), np.uint8), "HxW"),
        (np.zeros(640, np.uint8), "HxW"),
        ([[0, 1], [2, 3]], "numpy array"),
    ],
)
def test_bad_frames_are_refused_clearly(frame, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        Perceiver().process(frame, 0.0)
