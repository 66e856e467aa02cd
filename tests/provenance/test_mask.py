"""The perceptual mask keeps the mark faint where it would show: a flat backdrop with a
render's pixel dither, and the flat side of an edge (no halo round the avatar's head)."""

import numpy as np

from media_engine.provenance.mark import FLOOR, perceptual_mask

WIDTH, HEIGHT = 640, 480


def test_pixel_dither_on_a_flat_backdrop_is_not_texture():
    rng = np.random.default_rng(1)
    frame = np.full((HEIGHT, WIDTH, 3), 150, np.int16)
    frame += rng.integers(-2, 3, (HEIGHT, WIDTH, 1))  # ±2 levels, pixel by pixel
    mask = perceptual_mask(np.ascontiguousarray(frame.astype(np.uint8)))
    # The whole frame is flat: every pixel gets the floor (the energy cap only lowers it).
    assert mask.max() / 255.0 <= FLOOR * 1.05


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
    from media_engine.provenance.mark import START_FRAMES, SessionMark

    mark = SessionMark(b"k" * 40, 12345, clock=lambda: 29_000_000 * 60.0)
    flat = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)

    def energy(frame: np.ndarray) -> float:
        return float(np.mean((mark.apply(frame.copy()).astype(np.float64) - frame) ** 2))

    first = energy(flat)
    for _ in range(START_FRAMES):
        later = energy(flat)
    assert first > 1.5 * later > 0
    # A new frame size restarts the encoder downstream: the start's strength comes back.
    small = np.full((HEIGHT // 2, WIDTH // 2, 3), 128, np.uint8)
    assert energy(small) > 1.5 * later


def test_the_tag_stays_the_sessions_across_minutes():
    """One tag for the whole session: a low-bitrate VP8 stream keeps flat regions from
    before a change, so a tag changing every minute left frames with parts of two tags."""
    from media_engine.provenance.mark import START_FRAMES, SessionMark

    now = {"minute": 29_000_000}
    mark = SessionMark(b"k" * 40, 12345, clock=lambda: now["minute"] * 60.0)
    flat = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    for _ in range(START_FRAMES + 1):
        before = mark.apply(flat.copy())
    now["minute"] += 1
    after = mark.apply(flat.copy())
    assert np.array_equal(before, after)  # same pattern, steady strength: no restart
    assert mark.tag_at(29_000_000) != mark.tag_at(29_000_001)  # (the minute is in the tag)
