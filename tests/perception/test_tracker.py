"""Tracking: the detector runs when there is no track, the mesh follows the face from frame to
frame, a cut or a lost face brings the detector back, several faces -> the main one."""

import cv2
import numpy as np
import pytest

from media_engine.perception.detector import Detection
from media_engine.perception.perceiver import Perceiver
from media_engine.perception.tracker import pick_face


def shifted(frame: np.ndarray, dx: float, dy: float, angle: float = 0.0) -> np.ndarray:
    h, w = frame.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    m[:, 2] += (dx, dy)
    return cv2.warpAffine(frame, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


def test_track_holds_across_small_motions(astronaut_640: np.ndarray) -> None:
    perceiver = Perceiver()
    boxes = []
    for i in range(40):
        frame = shifted(astronaut_640, 12 * np.sin(i / 6), 6 * np.cos(i / 5), 3 * np.sin(i / 7))
        face = perceiver.process(frame, timestamp=i / 30)
        assert face is not None
        boxes.append(face.box)
        assert perceiver.timings.detected == (i == 0)
    assert perceiver.detector_calls == 1
    assert perceiver.stats()["track_losses"] == 0
    # The box follows the motion.
    xs = np.array([b[0] for b in boxes])
    assert xs.max() - xs.min() > 12


def test_track_follows_a_steady_walk_across_the_frame(astronaut_640: np.ndarray) -> None:
    perceiver = Perceiver()
    for i in range(30):
        face = perceiver.process(shifted(astronaut_640, -150 + 10 * i, 0), timestamp=i / 30)
        assert face is not None
        expected_x = 232 - 150 + 10 * i  # the face's left edge moves with the picture
        assert abs(face.box[0] - expected_x) < 15
    assert perceiver.detector_calls == 1


def test_cut_to_nothing_and_back(astronaut_640: np.ndarray) -> None:
    perceiver = Perceiver()
    assert perceiver.process(astronaut_640, 0.0) is not None
    blank = np.full_like(astronaut_640, 128)
    assert perceiver.process(blank, 0.033) is None
    assert perceiver.timings.detected  # the track was lost, the detector looked again
    calls = perceiver.detector_calls
    assert perceiver.process(blank, 0.066) is None
    assert perceiver.detector_calls == calls + 1  # no track: the detector runs each frame
    face = perceiver.process(astronaut_640, 0.1)
    assert face is not None and perceiver.timings.detected
    again = perceiver.process(astronaut_640, 0.133)
    assert again is not None
    assert not perceiver.timings.detected
    # The face found again is a new track (engines start a new neutral for it); following
    # it keeps the number.
    first = perceiver.process(astronaut_640, 0.166)
    assert face.track_id == again.track_id == first.track_id
    assert face.track_id > 1


def test_cut_to_the_face_elsewhere(astronaut_640: np.ndarray) -> None:
    """A cut moves the face far away: the old region holds no face, the detector finds it in
    the same frame."""
    perceiver = Perceiver()
    first = perceiver.process(shifted(astronaut_640, -200, 0), 0.0)
    assert first is not None
    moved = perceiver.process(shifted(astronaut_640, 200, 100), 0.033)
    assert moved is not None
    assert perceiver.timings.detected and perceiver.detector_calls == 2
    assert moved.track_id == first.track_id + 1  # re-acquired: a new track
    assert moved.box[0] - first.box[0] == pytest.approx(400, abs=15)
    assert moved.box[1] - first.box[1] == pytest.approx(100, abs=15)


def test_smoothing_steadies_a_still_face(astronaut_640: np.ndarray) -> None:
    """Camera noise on a still face: the smoothed points jitter less than the raw ones."""
    rng = np.random.default_rng(3)
    smooth, raw = Perceiver(), Perceiver(smoothing=False)
    tracks: dict[str, list[np.ndarray]] = {"smooth": [], "raw": []}
    for i in range(30):
        noise = rng.normal(0, 6, astronaut_640.shape)
        frame = np.clip(astronaut_640 + noise, 0, 255).astype(np.uint8)
        for name, perceiver in (("smooth", smooth), ("raw", raw)):
            face = perceiver.process(frame, timestamp=i / 30)
            assert face is not None
            tracks[name].append(face.landmarks[:, :2])
    jitter = {name: np.stack(pts[10:]).std(axis=0).mean() for name, pts in tracks.items()}
    assert jitter["smooth"] < jitter["raw"] * 0.7


def detection(x: float, y: float, size: float) -> Detection:
    return Detection(box=(x, y, size, size), keypoints=np.zeros((6, 2), np.float32), score=0.9)


def test_pick_face_prefers_large_and_central() -> None:
    big_central = detection(270, 190, 100)
    small_central = detection(300, 220, 40)
    big_corner = detection(0, 0, 110)
    assert pick_face([small_central, big_central, big_corner], 640, 480) is big_central
    assert pick_face([small_central, big_corner], 640, 480) is big_corner
    assert pick_face([detection(290, 210, 60), detection(560, 380, 70)], 640, 480).box[0] == 290
    assert pick_face([], 640, 480) is None


def test_two_faces_side_by_side(astronaut: np.ndarray) -> None:
    """Two astronauts, one larger: the larger one is followed, and stays followed."""
    face_crop = astronaut[30:230, 120:320]  # 200x200 around the face
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[140:340, 40:240] = face_crop
    larger = cv2.resize(face_crop, (300, 300))
    frame[90:390, 320:620] = larger
    perceiver = Perceiver()
    face = perceiver.process(frame, 0.0)
    assert face is not None
    assert face.box[0] > 320 and face.box[2] > 100
    for i in range(5):
        face = perceiver.process(frame, (i + 1) / 30)
        assert face is not None and face.box[0] > 320
    assert perceiver.detector_calls == 1


def test_track_follows_a_change_of_processing_size(astronaut: np.ndarray) -> None:
    """Adaptive resolution scales the frames (720p -> 360p -> 540p): the track scales with
    them, without the detector."""
    base = np.full((720, 1280, 3), 90, np.uint8)
    base[:, 280:1000] = cv2.resize(astronaut, (720, 720))
    perceiver = Perceiver()
    centres = {}
    for i, (w, h) in enumerate([(1280, 720), (640, 360), (640, 360), (960, 540), (1280, 720)]):
        face = perceiver.process(cv2.resize(base, (w, h), interpolation=cv2.INTER_AREA), i / 30)
        assert face is not None
        x, y, fw, fh = face.box
        centres[(w, h)] = ((x + fw / 2) * 1280 / w, (y + fh / 2) * 720 / h)
    assert perceiver.detector_calls == 1
    reference = np.array(centres[(1280, 720)])
    for centre in centres.values():
        assert np.linalg.norm(np.array(centre) - reference) < 12


def test_smoothing_keeps_blinks(astronaut_640: np.ndarray) -> None:
    """Short blinks (one to three frames at 30 fps) survive the smoothing filter."""
    from media_engine.perception import topology as t
    from tests.perception import warps

    still = Perceiver(smoothing=False).process(astronaut_640, 0.0)
    assert still is not None
    closed = warps.close_eye(astronaut_640, still.landmarks, t.RIGHT_EYE)
    closed = warps.close_eye(closed, still.landmarks, t.LEFT_EYE)
    blinks = [0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0]
    perceiver = Perceiver()
    openness = []
    for i, blink in enumerate(blinks):
        face = perceiver.process(closed if blink else astronaut_640, timestamp=i / 30)
        assert face is not None
        openness.append(face.measures.right_eye_open + face.measures.left_eye_open)
    assert np.corrcoef(blinks, openness)[0, 1] < -0.9


def test_track_follows_a_head_tilt(astronaut_640: np.ndarray) -> None:
    """The head tilts steadily to 40 degrees and back: the region turns with it (no new
    detection) and the roll follows the tilt."""
    perceiver = Perceiver(smoothing=False)
    angles = [*range(0, 42, 3), *range(39, -1, -3)]
    rolls = []
    for i, angle in enumerate(angles):
        face = perceiver.process(shifted(astronaut_640, 0, 0, angle), timestamp=i / 30)
        assert face is not None
        rolls.append(face.measures.roll)
    assert perceiver.detector_calls == 1
    # Turning the picture counter-clockwise tilts the head anticlockwise: roll goes negative.
    assert np.corrcoef(angles, rolls)[0, 1] < -0.99
    assert rolls[0] - min(rolls) == pytest.approx(39, abs=6)
