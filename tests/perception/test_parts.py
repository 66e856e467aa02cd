"""The pure parts of perception: anchors, decoding, NMS, regions, the filter, the topology."""

import math

import numpy as np
import pytest

from media_engine.perception import detector, landmarks
from media_engine.perception import topology as t
from media_engine.perception.filters import OneEuroFilter


def test_anchors() -> None:
    anchors = detector.ANCHORS
    assert anchors.shape == (896, 2)
    assert np.allclose(anchors[0], [0.5 / 16, 0.5 / 16]) and np.allclose(anchors[1], anchors[0])
    assert np.allclose(anchors[512], [0.5 / 8, 0.5 / 8])
    assert np.allclose(anchors[-1], [7.5 / 8, 7.5 / 8])


def test_decode_one_anchor() -> None:
    regressors = np.zeros((1, 896, 16), np.float32)
    scores = np.full((1, 896, 1), -10.0, np.float32)
    i = 512 + 6 * (8 * 3 + 4)  # 8x8 grid, row 3, column 4
    scores[0, i, 0] = 3.0
    regressors[0, i, :4] = [12.8, -6.4, 32.0, 64.0]  # dx, dy, w, h in 128-px units
    regressors[0, i, 4:6] = [-12.8, 0.0]  # first keypoint
    boxes, kps, probs = detector.decode(regressors, scores)
    assert len(boxes) == 1
    cx, cy = 4.5 / 8 + 0.1, 3.5 / 8 - 0.05
    assert np.allclose(boxes[0], [cx - 0.125, cy - 0.25, cx + 0.125, cy + 0.25], atol=1e-6)
    assert np.allclose(kps[0, 0], [4.5 / 8 - 0.1, 3.5 / 8], atol=1e-6)
    assert probs[0] == pytest.approx(1 / (1 + math.exp(-3.0)))


def test_weighted_nms_merges_overlaps_and_keeps_apart() -> None:
    boxes = np.array([[0, 0, 1, 1], [0.1, 0, 1.1, 1], [3, 3, 4, 4]], np.float64)
    kps = np.zeros((3, 6, 2))
    kps[1] += 1.0
    scores = np.array([0.9, 0.3, 0.8])
    merged = detector.weighted_nms(boxes, kps, scores)
    assert len(merged) == 2
    box, points, score = merged[0]
    assert score == 0.9
    assert box[0] == pytest.approx(0.1 * 0.3 / 1.2)
    assert points[0, 0] == pytest.approx(0.3 / 1.2)
    assert np.allclose(merged[1][0], [3, 3, 4, 4])


def test_region_maps_crop_to_frame() -> None:
    region = landmarks.Region(cx=100, cy=50, size=96, angle=math.radians(90))
    m = region.crop_to_frame()
    centre = m @ [96, 96, 1]
    assert np.allclose(centre, [100, 50])
    # The crop's x axis runs down the frame when turned by 90 degrees (clockwise, y down).
    right = m @ [192, 96, 1]
    assert np.allclose(right, [100, 50 + 48])


def test_region_from_landmarks_is_upright_and_square() -> None:
    pts = t.canonical_points()[:, :2] * 10 + [300, 200]
    angle = math.radians(25)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    turned = (pts - [300, 200]) @ rot.T + [300, 200]
    region = landmarks.region_from_landmarks(np.c_[turned, np.zeros(468)])
    assert region.angle == pytest.approx(angle, abs=1e-6)
    upright = landmarks.region_from_landmarks(np.c_[pts, np.zeros(468)])
    assert region.size == pytest.approx(upright.size, rel=1e-6)


def jitter_ratio(filt: OneEuroFilter, noise: float) -> float:
    """How much of a still point's jitter (``noise`` px on a 100 px face) passes the filter."""
    rng = np.random.default_rng(0)
    raw = [100 + rng.normal(0, noise, 4) for _ in range(60)]
    out = [filt(value, i / 30, scale=100) for i, value in enumerate(raw)]
    return float(np.std(np.array(out[20:])) / np.std(np.array(raw[20:])))


def test_one_euro_filter() -> None:
    # The lower the cut-off at rest, the more jitter goes.
    assert jitter_ratio(OneEuroFilter(min_cutoff=0.05, beta=80, d_cutoff=1), 0.2) < 0.5
    assert jitter_ratio(OneEuroFilter(), 0.2) < 0.9
    # A fast move passes through with little lag.
    filt = OneEuroFilter()
    filt(np.full(4, 100.0), 0.0, scale=100)
    moved = [filt(np.full(4, 100 + 10.0 * i), i / 30, scale=100) for i in range(1, 11)]
    assert np.all(np.abs(moved[-1] - 200) < 5)
    # A timestamp that does not move forward restarts the filter on that value.
    assert np.allclose(filt(np.full(4, 5.0), 0.0), 5.0)


def test_topology() -> None:
    triangles, canonical, mirror = t.TRIANGLES, t.CANONICAL_POINTS, t.MIRROR
    assert triangles.shape == (852, 3) and triangles.dtype == np.int32
    assert triangles.min() == 0 and triangles.max() == 467
    assert len(np.unique(triangles)) == 468
    assert canonical.shape == (468, 3)
    assert (mirror[mirror] == np.arange(468)).all()
    assert mirror[33] == 263 and mirror[61] == 291
    # The canonical face: the visitor's left eye on the image's right, eyes above the mouth,
    # nose tip towards the camera, symmetric.
    assert canonical[list(t.LEFT_EYE), 0].mean() > 0 > canonical[list(t.RIGHT_EYE), 0].mean()
    assert canonical[list(t.RIGHT_EYE), 1].mean() < canonical[list(t.LIPS_OUTER), 1].mean()
    assert canonical[t.NOSE_TIP, 2] < canonical[:, 2].mean()
    assert np.allclose(canonical[mirror, 0], -canonical[:, 0], atol=1e-4)
    groups = (t.RIGHT_EYE, t.LEFT_EYE, t.LIPS_OUTER, t.LIPS_INNER, t.RIGHT_BROW, t.LEFT_BROW,
              t.FACE_OVAL, t.RIGID, t.NOSE_BRIDGE)  # fmt: skip
    for group in groups:
        assert all(0 <= i < 468 for i in group) and len(set(group)) == len(group)
    assert [mirror[i] for i in t.RIGHT_EYE] == list(t.LEFT_EYE)
    with pytest.raises(AttributeError):
        _ = t.NOT_A_GROUP
