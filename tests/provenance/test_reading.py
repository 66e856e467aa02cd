"""Reading the payload between canonical pixels, and on its own weighting (pure functions of
detect.py)."""

import cv2
import numpy as np
import pytest

from media_engine.provenance import detect
from media_engine.provenance.detect import SIDE, _vertex, reading_points, shifted


@pytest.mark.parametrize("true_peak", [-0.4, -0.1, 0.0, 0.25, 0.45])
def test_the_vertex_of_a_sampled_parabola_is_where_it_peaks(true_peak):
    values = [-((x - true_peak) ** 2) for x in (-1.0, 0.0, 1.0)]
    assert _vertex(*values) == pytest.approx(true_peak)


def test_no_vertex_where_the_values_do_not_bend_down():
    assert _vertex(1.0, 2.0, 3.0) == 0.0  # a slope
    assert _vertex(2.0, 1.0, 2.0) == 0.0  # a valley


def test_a_whole_pixel_shift_moves_the_tile_by_that_pixel():
    tile = np.random.default_rng(3).normal(size=(SIDE, SIDE))
    moved = np.fft.irfft2(shifted(np.fft.rfft2(tile), (2.0, -3.0)), s=(SIDE, SIDE))
    np.testing.assert_allclose(moved, np.roll(tile, (-2, 3), axis=(0, 1)), atol=1e-9)


def test_a_half_pixel_shift_lands_between_the_pixels():
    """A smooth bump at 10.5 is centred on pixel 10 after half a pixel's shift."""
    x = np.arange(SIDE)
    bump = np.exp(-((x - 10.5) ** 2) / 8.0)
    tile = np.tile(bump, (SIDE, 1))
    moved = np.fft.irfft2(shifted(np.fft.rfft2(tile), (0.0, 0.5)), s=(SIDE, SIDE))
    assert int(np.argmax(moved[0])) == 10
    assert moved[0, 9] == pytest.approx(moved[0, 11], rel=1e-6)


def test_the_payload_is_read_at_the_peak_first_then_at_the_refined_peak():
    """A correlation peak between pixels (at 40.3, 70.8) is read at its whole-pixel
    maximum, then where the parabola through its neighbours puts it."""
    y, x = np.mgrid[:SIDE, :SIDE]
    surface = -((y - 40.3) ** 2) - (x - 70.8) ** 2
    peak = divmod(int(np.argmax(surface)), SIDE)
    assert peak == (40, 71)
    points = reading_points(surface, peak)
    assert points[0] == (0.0, 0.0)
    assert points[1] == pytest.approx((0.3, -0.2))
    flat = np.zeros((SIDE, SIDE))
    assert reading_points(flat, (5, 5)) == [(0.0, 0.0)]


def _picture() -> np.ndarray:
    """480×640 grey: a faint chip-sized ±1 pattern (like a mark on a flat backdrop) all over,
    and strong noise (texture) on the right half."""
    rng = np.random.default_rng(9)
    chips = rng.choice([-1.0, 1.0], (48, 64)).astype(np.float32)
    picture = 120.0 + cv2.resize(chips, (640, 480), interpolation=cv2.INTER_CUBIC)
    picture[:, 320:] += rng.normal(0, 20, (480, 320)).astype(np.float32)
    return picture


def test_the_payloads_residual_keeps_the_faint_pattern_beside_texture():
    """Two chips left of the textured half, the sync's residual (energy over 1.5 chips)
    is damped by the texture's energy spilling over; the payload's (over one chip) keeps
    the faint pattern as it is far from the texture."""
    residuals = detect.prepared(_picture())  # 192 lines: 4 pixels a chip, texture from 128
    level = np.abs(residuals).mean(axis=1)  # (2, columns)
    near, far = 120, 40
    sync_kept, payload_kept = level[:, near] / level[:, far]
    assert payload_kept > 0.9
    assert sync_kept < 0.8


def test_the_sync_is_found_on_its_own_weighting_whatever_the_payloads(monkeypatch):
    """The sync's score (on which the thresholds were set from unmarked pictures) does not
    move when the payload's weighting does."""
    secret = b"0123456789abcdef0123456789abcdef"
    before = detect.search(secret, detect.prepared(_picture()))
    monkeypatch.setattr(detect, "PAYLOAD_ENERGY", (3.0, 10.0))
    monkeypatch.setattr(detect, "PAYLOAD_WHITEN_POWER", 1.0)
    after = detect.search(secret, detect.prepared(_picture()))
    assert (after.score, after.offset) == (before.score, before.offset)
    assert after.tile_px == before.tile_px
