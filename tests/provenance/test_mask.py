"""The perceptual mask keeps the mark faint where it would show: a flat backdrop with a
render's pixel dither, a smooth gradient (the presenters' backdrop), and the flat side of an
edge (no halo round the avatar's head)."""

import itertools

import numpy as np

from media_engine.provenance.mark import FLOOR, perceptual_mask

WIDTH, HEIGHT = 640, 480


def test_pixel_dither_on_a_flat_backdrop_is_not_texture():
    rng = np.random.default_rng(1)
    frame = np.full((HEIGHT, WIDTH, 3), 150, np.int16)
    frame += rng.integers(-2, 3, (HEIGHT, WIDTH, 1))  # ±2 levels, pixel by pixel
    mask = perceptual_mask(np.ascontiguousarray(frame.astype(np.uint8)))
    # The whole frame is flat: every pixel gets the floor (the energy cap only lowers it),
    # within 1 % of the peak (±0.06 levels; the mask is kept in 1/255 steps).
    assert mask.max() / 255.0 <= FLOOR + 0.01


def test_the_flat_side_of_an_edge_gets_only_the_floor():
    rng = np.random.default_rng(2)
    frame = np.full((HEIGHT, WIDTH, 3), 150, np.uint8)
    frame[:, WIDTH // 2 :] = rng.integers(40, 220, (HEIGHT, WIDTH // 2, 1), dtype=np.uint8)
    mask = perceptual_mask(frame)
    textured = mask[:, WIDTH // 2 + 24 :]
    near_edge = mask[:, : WIDTH // 2 - 12]
    assert textured.min() > 2.5 * near_edge.max()
    # Relative to the textured side's level (the energy cap scales both alike).
    assert near_edge.max() <= textured.max() * FLOOR * 1.1


def test_flat_regions_get_more_while_an_encoder_starts():
    from media_engine.provenance.mark import RAMP_FRAMES, START_FRAMES, SessionMark

    mark = SessionMark(b"k" * 40, 12345, clock=lambda: 29_000_000 * 60.0)
    flat = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)

    def energy(frame: np.ndarray) -> float:
        return float(np.mean((mark.apply(frame.copy()).astype(np.float64) - frame) ** 2))

    first = energy(flat)
    for _ in range(START_FRAMES + RAMP_FRAMES):
        later = energy(flat)
    assert first > 1.5 * later > 0
    # A new frame size restarts the encoder downstream: the start's strength comes back.
    small = np.full((HEIGHT // 2, WIDTH // 2, 3), 128, np.uint8)
    assert energy(small) > 1.5 * later


def test_a_restart_brings_the_start_strength_back_at_the_same_size():
    from media_engine.provenance.mark import RAMP_FRAMES, START_FRAMES, SessionMark

    mark = SessionMark(b"k" * 40, 12345, clock=lambda: 29_000_000 * 60.0)
    flat = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)

    def energy() -> float:
        return float(np.mean((mark.apply(flat.copy()).astype(np.float64) - flat) ** 2))

    first = energy()
    for _ in range(START_FRAMES + RAMP_FRAMES):
        steady = energy()
    mark.restart()  # the encoder downstream was rebuilt (a bitrate change, say)
    assert energy() == first > 1.5 * steady
    for _ in range(START_FRAMES + RAMP_FRAMES):
        again = energy()
    assert again == steady


def test_the_tag_stays_the_sessions_across_minutes():
    """One tag for the whole session: a low-bitrate VP8 stream keeps flat regions from
    before a change, so a tag changing every minute left frames with parts of two tags."""
    from media_engine.provenance.mark import RAMP_FRAMES, START_FRAMES, SessionMark

    now = {"minute": 29_000_000}
    mark = SessionMark(b"k" * 40, 12345, clock=lambda: now["minute"] * 60.0)
    flat = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    for _ in range(START_FRAMES + RAMP_FRAMES + 1):
        before = mark.apply(flat.copy())
    now["minute"] += 1
    after = mark.apply(flat.copy())
    assert np.array_equal(before, after)  # same pattern, steady strength: no restart
    assert mark.tag_at(29_000_000) != mark.tag_at(29_000_001)  # (the minute is in the tag)


def _steady_mark_on(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(added, intended): the mark (signed levels, green channel) a session adds to
    ``frame`` once past the encoder's start, and the unrounded mark it stands for."""
    from media_engine.provenance.mark import (
        RAMP_FRAMES,
        START_FRAMES,
        SUBLEVELS,
        SessionMark,
        pattern_planes,
    )

    mark = SessionMark(b"k" * 40, 12345, clock=lambda: 29_000_000 * 60.0)
    for _ in range(START_FRAMES + RAMP_FRAMES + 1):
        marked = mark.apply(frame.copy())
    height, width = frame.shape[:2]
    plus, minus = pattern_planes(mark.secret, mark.tag_at(mark._minute), width, height)
    pattern = (plus.astype(np.float64) - minus) / SUBLEVELS
    intended = pattern * perceptual_mask(frame) / 255.0
    return marked[..., 1].astype(np.float64) - frame[..., 1], intended


def _gradient() -> np.ndarray:
    """A presenter's backdrop: a smooth two-way gradient, 95 to 205 levels, no texture."""
    x = np.linspace(0.0, 1.0, WIDTH)[None, :]
    y = np.linspace(0.0, 1.0, HEIGHT)[:, None]
    luma = 95 + 80 * np.sin(np.pi * x) * (0.6 + 0.4 * y) + 30 * y
    return np.repeat(np.round(luma)[..., None], 3, axis=2).astype(np.uint8)


def _cell_means(plane: np.ndarray) -> np.ndarray:
    """Means over 4×4 cells (the ordered dither's)."""
    return plane.reshape(HEIGHT // 4, 4, WIDTH // 4, 4).mean(axis=(1, 3))


def test_the_mark_on_a_smooth_gradient_is_faint_and_without_contours():
    gradient = _gradient()
    # A smooth gradient has no texture: all of it gets the floor, nothing more.
    assert perceptual_mask(gradient).max() / 255.0 <= FLOOR * 1.05
    added, intended = _steady_mark_on(gradient)
    # Faint: an RMS of about one level (the lead's sheets: ±1.2 levels of hard-edged ±1
    # blotches still showed side by side), hardly a pixel beyond ±2 levels.
    assert np.sqrt(np.mean(added**2)) <= 1.05
    assert np.percentile(np.abs(added), 99.9) <= 2
    # Dithered, not rounded: over the dither's 4×4 cells the mark follows the smooth
    # pattern (9 cells in 10 within 0.12 levels; rounding to whole-level plateaus with hard
    # edges: 0.22).
    error = np.abs(_cell_means(added) - _cell_means(intended))
    assert np.percentile(error, 90) <= 0.12


def test_the_dither_keeps_a_fraction_of_a_level():
    from media_engine.provenance.mark import SUBLEVELS, dither_plane, to_levels

    dither = dither_plane(64, 48)
    for value in range(0, 6 * SUBLEVELS + 1):
        levels = to_levels(np.full((48, 64), value, np.uint8), dither)
        assert levels.mean() == value / SUBLEVELS  # exact over whole 4×4 cells
        assert levels.max() - levels.min() <= 1


def test_the_start_strength_ramps_down_to_the_steady_one():
    from media_engine.provenance.mark import (
        RAMP_FRAMES,
        RMS_BUDGET,
        START_FLOOR,
        START_FRAMES,
        start_strength,
    )

    floors = [start_strength(n)[0] for n in range(1, START_FRAMES + RAMP_FRAMES + 5)]
    assert floors[0] == floors[START_FRAMES - 1] == START_FLOOR
    assert all(a >= b for a, b in itertools.pairwise(floors))
    # No step bigger than a thirtieth of the drop once the start is over.
    steps = np.diff(floors[START_FRAMES - 1 :])
    assert np.abs(steps).max() <= (START_FLOOR - FLOOR) / RAMP_FRAMES + 1e-9
    assert start_strength(START_FRAMES + RAMP_FRAMES) == (FLOOR, RMS_BUDGET)
