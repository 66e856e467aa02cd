"""Retargeting: the visitor's motion relative to their neutral face, onto the avatar."""

import numpy as np

from media_engine.engines import face_regions as fr
from media_engine.engines.portraits import default_avatar
from media_engine.engines.retarget import CALIBRATION_FRAMES, Retarget
from tests.engine_helpers import open_mouth, placed_landmarks


def lips_gap(points):
    upper, lower = [82, 13, 312], [87, 14, 317]
    return float((points[lower, 1] - points[upper, 1]).mean())


def test_a_still_neutral_face_leaves_the_avatar_at_rest():
    target = default_avatar().landmarks[:, :2]
    retarget = Retarget(target)
    visitor = placed_landmarks(640, 480, 200)
    for _ in range(CALIBRATION_FRAMES + 5):
        motion = retarget.update(visitor)
    np.testing.assert_allclose(motion.points, target, atol=1e-3)
    np.testing.assert_allclose(motion.head, np.eye(2, 3), atol=1e-6)


def test_opening_the_mouth_opens_the_avatars_mouth():
    target = default_avatar().landmarks[:, :2]
    retarget = Retarget(target)
    visitor = placed_landmarks(640, 480, 200)
    for _ in range(CALIBRATION_FRAMES):
        retarget.update(visitor)
    motion = retarget.update(open_mouth(visitor, 0.7))
    assert lips_gap(motion.points) > lips_gap(target) + 10


def test_a_calibration_caught_talking_is_corrected_and_never_folds_the_lips():
    target = default_avatar().landmarks[:, :2]
    retarget = Retarget(target)
    visitor = placed_landmarks(640, 480, 200)
    talking = open_mouth(visitor, 0.6)
    for _ in range(CALIBRATION_FRAMES):
        retarget.update(talking)  # the visitor arrived talking
    gaps = []
    for _ in range(30):
        motion = retarget.update(visitor)  # then closed the mouth
        upper = motion.points[[191, 80, 81, 82, 13, 312, 311, 310, 415], 1]
        lower = motion.points[[95, 88, 178, 87, 14, 317, 402, 318, 324], 1]
        assert (lower >= upper - 1e-6).all()
        gaps.append(lips_gap(motion.points))
    # Back to the avatar's own closed mouth.
    assert abs(gaps[-1] - lips_gap(target)) < 1.0


def test_blinks_close_the_avatars_eyes():
    target = default_avatar().landmarks[:, :2]
    retarget = Retarget(target)
    visitor = placed_landmarks(640, 480, 200)
    for _ in range(CALIBRATION_FRAMES):
        retarget.update(visitor)
    closed = visitor.copy()
    closed[fr.UPPER_LIDS, :2] = closed[fr.LOWER_LIDS, :2] * 0.6 + closed[fr.UPPER_LIDS, :2] * 0.4
    motion = retarget.update(closed)
    gap = np.linalg.norm(motion.points[fr.UPPER_LIDS] - motion.points[fr.LOWER_LIDS], axis=1)
    assert gap.max() < 0.5  # a 60% closing reads as shut (eyelid gain)
