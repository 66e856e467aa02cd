"""Finding a key's mark in a picture that may have been cropped, scaled and re-encoded.

1. The luma is band-passed around the chip size (the host picture's low frequencies and
   the codec's noise go) and divided by its local energy, so that textured regions do not
   outvote the flat ones: once for finding the sync (``SYNC_ENERGY``), once for reading the
   payload (``PAYLOAD_ENERGY``, more local).
2. For each candidate tile size (two thirds of the picture's height, up to 12 % larger for a
   cropped top or bottom; every 1.2 % first, then in 0.4 % steps around the best) the
   residual is resampled so that a tile is
   ``CHIPS * CANONICAL_CHIP`` pixels and all its tiles are summed into one (folding).
3. The folded tile's spectrum is partly whitened (each frequency divided by the square
   root of its magnitude, ``WHITEN_POWER``): what is left of the host picture in a folded
   tile is strongest at the band's low end, and without this it set the correlation's
   noise; the mark, spread evenly over the band, then weighs more (a softer form of the
   symmetric phase-only matched filter of tiled video watermarks: Kalker et al., "A video
   watermarking system for broadcast monitoring", SPIE 3657, 1999).
4. The whitened tile is cross-correlated (FFT, cyclic) with the key's sync part: the peak
   gives the tile's offset, its height over the spread of the surface gives ``score``.
5. At the best size and offset the payload's residual is folded, whitened a little further
   (``PAYLOAD_WHITEN_POWER``), and its chips are read, despread into soft coded bits and
   decoded (``payload.decode``: Viterbi and CRC); where the CRC fails, once more at the
   peak refined between canonical pixels (``reading_points``; the first CRC that passes
   wins: two chances in 65,536 per key that noise passes one, and only where the sync
   already stands out).

The search costs tens of milliseconds per key; embedding costs none of it.
"""

from dataclasses import dataclass

import cv2
import numpy as np

from media_engine.provenance import payload as coding
from media_engine.provenance.pattern import (
    CANONICAL_CHIP,
    CHIPS,
    CHIPS_PER_HEIGHT,
    band_pass,
    canonical_chip,
    canonical_sync,
    layout,
)

SIDE = CHIPS * CANONICAL_CHIP
SCALE_STEP = 1.004  # the fine search's step between tile sizes
COARSE_STEPS = 3  # the coarse search looks at every third of them first
CROP_ALLOWANCE = 1.12  # the picture may have lost up to ~10 % of its height
MIN_SIDE = 64  # smaller pictures cannot hold a tile
# Each frequency of a folded tile is divided by its magnitude to this power (0: the plain
# matched filter, 1: phase only). 0.5 raised the sync score after VP8 at 300 kb/s by about
# one (and the payload's SNR by ~1 dB) while unmarked pictures rose by 0.2
# (docs/provenance.md, "Visibility").
WHITEN_POWER = 0.5
# The residual's local energy (its Gaussian's sigma in chips; what is added to it, in
# squared levels of the band, so that a flat region's codec noise is not blown up) and
# the folded tile's whitening, for finding the sync and for reading the payload. The
# sync's are those the thresholds were set by (its scores on unmarked pictures). The
# payload's (the sync's until 2026-12-08) are more local: a textured region's energy spilt
# over the flat one beside it and drowned the mark there. On the shipped presenters' frames
# cropped or through VP8 at 300 kb/s its soft bits' SNR rose by up to 30 %, and the crops
# that lost their payload at floor 0.16 read every frame (docs/provenance.md, "The shipped
# presenters").
SYNC_ENERGY = (1.5, 1.0)
PAYLOAD_ENERGY = (1.0, 3.0)
PAYLOAD_WHITEN_POWER = 0.75


@dataclass(frozen=True)
class Detection:
    score: float  # sync peak in standard deviations of the correlation surface
    tag: int | None  # the decoded 64-bit tag, None when the CRC failed
    tile_px: float  # the tile's size in pixels, in the picture brought down to 192 high
    offset: tuple[int, int]  # (dy, dx) of the tile in canonical pixels


def luma(image: np.ndarray) -> np.ndarray:
    """Float32 luma of a BGR or grey picture."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return image.astype(np.float32)


def residual(gray: np.ndarray, chip_px: float) -> np.ndarray:
    """(2, h, w): the band around the chip size divided by its local energy (textured
    regions, where the host picture drowns the mark, weigh less: the weighting that is
    optimal for a weak signal in noise of varying power), ``SYNC_ENERGY``'s and
    ``PAYLOAD_ENERGY``'s."""
    band = band_pass(gray, chip_px)
    square = band * band
    return np.stack(
        [
            band / (cv2.GaussianBlur(square, (0, 0), sigma * chip_px) + floor)
            for sigma, floor in (SYNC_ENERGY, PAYLOAD_ENERGY)
        ]
    )


def fold(res: np.ndarray, tile_px: float) -> np.ndarray | None:
    """One residual ``res`` (h × w) resampled to ``CANONICAL_CHIP`` pixels per chip and
    summed tile by tile."""
    factor = SIDE / tile_px
    height, width = res.shape
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    if min(size) < SIDE // 2:
        return None
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    scaled = cv2.resize(res, size, interpolation=interpolation)
    down, across = -(-size[1] // SIDE), -(-size[0] // SIDE)
    padded = np.zeros((down * SIDE, across * SIDE), dtype=np.float64)
    padded[: size[1], : size[0]] = scaled
    return padded.reshape(down, SIDE, across, SIDE).sum(axis=(0, 2))


def whitened(folded: np.ndarray, power: float = WHITEN_POWER) -> np.ndarray:
    """The spectrum (``rfft2``) of a folded tile, each frequency divided by its magnitude
    to the power ``power``."""
    spectrum = np.fft.rfft2(folded)
    return spectrum / np.maximum(np.abs(spectrum), 1e-12) ** power


def _correlate(
    spectrum: np.ndarray, sync_fft: np.ndarray
) -> tuple[float, tuple[int, int], np.ndarray]:
    """The sync peak's score and offset, and the correlation surface."""
    surface = np.fft.irfft2(spectrum * sync_fft, s=(SIDE, SIDE))
    flat = int(np.argmax(surface))
    peak = surface.flat[flat]
    spread = surface.std()
    score = float((peak - surface.mean()) / spread) if spread > 0 else 0.0
    return score, divmod(flat, SIDE), surface


def _vertex(before: float, at: float, after: float) -> float:
    """Where a parabola through three neighbouring values peaks, from the middle one
    (within ±0.5; 0 where they do not bend down)."""
    bend = before - 2.0 * at + after
    return float(np.clip(0.5 * (before - after) / bend, -0.5, 0.5)) if bend < 0 else 0.0


def reading_points(surface: np.ndarray, offset: tuple[int, int]) -> list[tuple[float, float]]:
    """Where the payload is read, in canonical pixels from the sync peak's whole-pixel
    ``offset``: there, then at the peak refined between pixels (a parabola through its
    neighbours on each axis). A tile that starts between two canonical pixels (after a crop
    or a scale) has its payload chips read up to half a pixel off at the whole-pixel peak,
    where the CRC can fail."""
    y, x = offset
    refined = (
        _vertex(surface[(y - 1) % SIDE, x], surface[y, x], surface[(y + 1) % SIDE, x]),
        _vertex(surface[y, (x - 1) % SIDE], surface[y, x], surface[y, (x + 1) % SIDE]),
    )
    return [(0.0, 0.0), refined] if refined != (0.0, 0.0) else [(0.0, 0.0)]


def shifted(spectrum: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """A folded tile's spectrum moved so that what lay ``shift`` (canonical pixels, dy, dx)
    further on lies where it was (the Fourier shift theorem)."""
    if shift == (0.0, 0.0):
        return spectrum
    fy = np.fft.fftfreq(SIDE)[:, None]
    fx = np.fft.rfftfreq(SIDE)[None, :]
    return spectrum * np.exp(2j * np.pi * (fy * shift[0] + fx * shift[1]))


def tile_sizes(height: int) -> np.ndarray:
    """Candidate tile sizes (pixels) for a picture ``height`` pixels high."""
    smallest = height * CHIPS / CHIPS_PER_HEIGHT / 1.01
    steps = int(np.ceil(np.log(CROP_ALLOWANCE * 1.02) / np.log(SCALE_STEP)))
    return smallest * SCALE_STEP ** np.arange(steps + 1)


def soft_bits(secret: bytes, spectrum: np.ndarray, offset: tuple[int, int]) -> np.ndarray:
    """The soft coded bits (positive means 1) in a folded tile (its ``whitened`` spectrum)
    aligned at ``offset``."""
    kernel = np.conj(np.fft.rfft2(canonical_chip()))
    matched = np.fft.irfft2(spectrum * kernel, s=(SIDE, SIDE))
    aligned = np.roll(matched, (-offset[0], -offset[1]), axis=(0, 1))
    chips = aligned[::CANONICAL_CHIP, ::CANONICAL_CHIP]
    lay = layout(secret)
    values = chips.ravel()[lay.payload_index] * lay.payload_signs
    soft = np.bincount(lay.payload_bit, weights=values, minlength=coding.CODED_BITS)
    spread = soft.std()
    return soft / spread if spread > 0 else soft


def prepared(gray: np.ndarray) -> np.ndarray | None:
    """Step 1 for one picture, the same for every key: its residuals (``residual``) near the
    canonical scale (a picture as high as ``CHIPS_PER_HEIGHT`` canonical chips); None for a
    picture too small to hold a tile."""
    if min(gray.shape) < MIN_SIDE:
        return None
    working = CHIPS_PER_HEIGHT * CANONICAL_CHIP
    if gray.shape[0] > working:
        size = (max(1, round(gray.shape[1] * working / gray.shape[0])), working)
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    return residual(gray, gray.shape[0] / CHIPS_PER_HEIGHT)


def search(secret: bytes, res: np.ndarray | None) -> Detection:
    """Steps 2-5 on a ``prepared`` picture's residuals (or the mean of several of one
    clip's)."""
    if res is None:
        return Detection(score=0.0, tag=None, tile_px=0.0, offset=(0, 0))
    sync_res, payload_res = res
    sync_fft = np.conj(np.fft.rfft2(canonical_sync(secret)))
    sizes = tile_sizes(sync_res.shape[0])
    tried: dict[int, tuple] = {}

    def attempt(index: int) -> tuple:
        if index not in tried:
            folded = fold(sync_res, sizes[index])
            score, offset, surface = (-np.inf, (0, 0), None)
            if folded is not None:
                score, offset, surface = _correlate(whitened(folded), sync_fft)
            tried[index] = (score, sizes[index], offset, surface)
        return tried[index]

    coarse = max(range(0, len(sizes), COARSE_STEPS), key=lambda i: attempt(i)[0])
    nearby = range(max(0, coarse - COARSE_STEPS + 1), min(len(sizes), coarse + COARSE_STEPS))
    score, tile_px, offset, surface = max((attempt(i) for i in nearby), key=lambda f: f[0])
    if surface is None:
        return Detection(score=0.0, tag=None, tile_px=0.0, offset=(0, 0))
    spectrum = whitened(fold(payload_res, tile_px), PAYLOAD_WHITEN_POWER)
    for point in reading_points(surface, offset):
        tag = coding.decode(soft_bits(secret, shifted(spectrum, point), offset))
        if tag is not None:
            break
    return Detection(score=score, tag=tag, tile_px=tile_px, offset=offset)
