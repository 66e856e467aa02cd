"""The per-frame fast paths give the pictures of the plain formulas they replace."""

import av
import cv2
import numpy as np
import pytest

from media_engine.engines import face_regions as fr
from media_engine.engines import rig as rg
from media_engine.engines.compositing import blend
from media_engine.engines.mouth import parabola
from media_engine.label import _scaled, apply_label
from media_engine.pipeline import to_video_frame

RNG = np.random.default_rng(7)


def float_blend(part, bgr, alpha, extra=None):
    a = alpha.astype(np.float64) / 255 * (1 if extra is None else extra)
    return np.clip(bgr * a[..., None] + part * (1 - a[..., None]) + 0.5, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("with_extra", [False, True])
def test_blend_is_within_a_level_of_the_float_blend_and_exact_at_the_ends(with_extra):
    h, w = 97, 131
    part, bgr = (RNG.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(2))
    alpha = RNG.integers(0, 256, (h, w), dtype=np.uint8)
    alpha[:10], alpha[-10:] = 0, 255
    extra = RNG.random((h, w), dtype=np.float32) if with_extra else None
    if extra is not None:
        extra[-10:] = 1.0  # opaque and fully kept: the layer itself
    ours = blend(part, bgr, alpha, extra).astype(int)
    diff = np.abs(ours - float_blend(part, bgr, alpha, extra))
    # One rounding per product; with ``extra`` the alpha is rounded to 8 bits first.
    assert diff.max() <= (2 if with_extra else 1) and diff.mean() < 0.3
    assert np.array_equal(ours[:10], part[:10])
    assert np.array_equal(ours[-10:], bgr[-10:])


def reference_pose(rest, pivot, triangles, rest_area, pose):
    """pose_head as first written: fancy indexing and signs."""
    turned = (rest - pivot) @ rg.rotation(pose.yaw, pose.pitch, pose.roll).T + pivot
    rg.keep_outline(turned, rest, pivot, pose.roll)
    xy = turned[:, :2] + pose.offset
    area = fr.signed_areas(xy, triangles)
    facing = ((np.sign(area) == fr.FRONT) | (np.sign(area) == np.sign(rest_area))) & (
        np.abs(area) > 1e-3
    )
    drawn = triangles[facing]
    order = np.argsort(-turned[:, 2][drawn].sum(axis=1), kind="stable")
    return xy, drawn[order], int((~facing).sum())


def test_pose_head_culls_and_orders_the_triangles_as_fancy_indexing_does():
    from media_engine.engines.avatar import AvatarEngine

    engine = AvatarEngine.for_identity(None)
    fit = engine.fitted(640, 480)
    for yaw, pitch, roll in [(0, 0, 0), (35, -10, 5), (-40, 25, -30), (12.5, 3.3, 29)]:
        pose = rg.Pose(yaw, pitch, roll, RNG.normal(size=2) * 5)
        posed = rg.pose_head(fit.rest, fit.pivot, engine.triangles, fit.rest_area, pose)
        xy, drawn, culled = reference_pose(fit.rest, fit.pivot, engine.triangles,
                                           fit.rest_area, pose)  # fmt: skip
        assert np.allclose(posed.points, xy, atol=1e-9)
        assert np.array_equal(posed.triangles, drawn)
        assert posed.culled == culled
    assert culled > 0  # the large turn culls some


def test_the_mouths_parabola_is_polyfits():
    x = np.sort(RNG.uniform(200, 260, 11))
    y = 300 + 0.01 * (x - 230) ** 2 + RNG.normal(size=11)
    assert np.allclose(parabola(x, y), np.polyval(np.polyfit(x, y, 2), x), atol=1e-6)


@pytest.mark.parametrize("shape", [(480, 640), (720, 1280), (33, 218), (16, 16), (1, 1), (7, 3000)])
def test_the_label_is_the_uint16_formula_bit_for_bit(shape):
    frame = RNG.integers(0, 256, (*shape, 3), dtype=np.uint8)
    premultiplied, inverse, x, y = _scaled(shape[1], shape[0])
    h, w = inverse.shape[:2]
    expected = frame.copy()
    roi = expected[y : y + h, x : x + w]
    roi[:] = ((roi.astype(np.uint16) * inverse + premultiplied) >> 8).astype(np.uint8)
    assert np.array_equal(apply_label(frame), expected)


@pytest.mark.parametrize("size", [(640, 480), (1280, 720), (66, 34), (2, 2), (642, 482)])
def test_the_yuv_frame_holds_opencvs_i420_planes(size):
    w, h = size
    bgr = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
    frame = to_video_frame(bgr)
    expected = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)
    assert isinstance(frame, av.VideoFrame) and frame.format.name == "yuv420p"
    assert (frame.width, frame.height) == (w, h)
    assert np.array_equal(frame.to_ndarray(), expected)


def test_the_expression_features_read_only_the_points_brought_to_the_canonical_frame():
    from media_engine.engines import expression as ex
    from media_engine.perception import topology

    points = topology.canonical_points().astype(np.float64) * 7 + [320, 240, 0]
    points += RNG.normal(scale=0.5, size=points.shape)
    rotation, scale, shift = ex.canonical_fit(points)
    full = (points - shift) @ rotation / scale
    only_read = np.full_like(full, np.nan)
    only_read[ex._READ] = full[ex._READ]
    assert np.allclose(ex.raw_features(only_read), ex.raw_features(full), rtol=1e-12)


def test_the_provenance_mark_is_the_two_part_formula_bit_for_bit():
    from media_engine.provenance.mark import (
        RAMP_FRAMES,
        START_FRAMES,
        SessionMark,
        dither_plane,
        pattern_planes,
        to_levels,
    )
    from media_engine.provenance.mark import perceptual_mask as mask_of
    from media_engine.provenance.payload import MINUTE_BITS

    mark = SessionMark(b"k" * 40, 12345, clock=lambda: 29_000_000 * 60.0)
    tag = mark.tag_at(29_000_000 % (1 << MINUTE_BITS))
    plus, minus = pattern_planes(mark.secret, tag, 320, 240)
    dither = dither_plane(320, 240)
    steady = START_FRAMES + RAMP_FRAMES
    for i in range(steady + 2):
        frame = RNG.integers(0, 256, (240, 320, 3), dtype=np.uint8)
        frame[:120] = 128  # flat half
        ours = mark.apply(frame.copy())
        if i < steady:
            continue
        mask = mask_of(frame)
        p = to_levels(cv2.multiply(plus, mask, scale=1 / 255.0), dither)
        m = to_levels(cv2.multiply(minus, mask, scale=1 / 255.0), dither)
        expected = cv2.subtract(cv2.add(frame, cv2.merge((p, p, p))), cv2.merge((m, m, m)))
        assert np.array_equal(ours, expected)
