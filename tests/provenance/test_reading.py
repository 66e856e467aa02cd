"""Reading the payload between canonical pixels (pure functions of detect.py)."""

import numpy as np
import pytest

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
