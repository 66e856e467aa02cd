"""The keyed spread-spectrum pattern: one tile of ``CHIPS``×``CHIPS`` chips, repeated.

Half of a tile's chips (keyed positions) are the synchronisation part: a keyed ±1 sequence
that never changes for a key, which the verifier finds again after cropping and scaling.
The other half carry the coded payload (``payload.CODED_BITS`` bits, each spread over about
three chips per tile, with a keyed ±1 sequence and a keyed order). The pattern lives in the
frame's luma at chip size ``height / CHIPS_PER_HEIGHT``: mid-to-low spatial frequency, which
VP8/H.264 at low bitrates and JPEG keep, and the same in every frame of a minute. Pure
functions, no I/O.
"""

import functools
import hashlib
import hmac
from dataclasses import dataclass

import cv2
import numpy as np

from media_engine.provenance import payload as coding

CHIPS = 32  # a tile is CHIPS × CHIPS chips
CHIPS_PER_HEIGHT = 48  # chip size = frame height / CHIPS_PER_HEIGHT (1.5 tiles per height)
CANONICAL_CHIP = 4  # pixels per chip where the verifier folds a picture
# Amplitudes of the sync and the payload chips (mean square 1): the sync is found with a
# wide margin from hundreds of chips, each payload bit has only about three.
SYNC_WEIGHT = 0.7  # payload chips 1.23: the sync still clears its threshold after VP8
PAYLOAD_WEIGHT = float(np.sqrt(2.0 - SYNC_WEIGHT**2))


@dataclass(frozen=True)
class Layout:
    """Where a key puts its sync chips and its payload chips in a tile."""

    sync_mask: np.ndarray  # (CHIPS, CHIPS) bool
    sync_signs: np.ndarray  # (CHIPS, CHIPS) ±1 (0 outside the sync chips)
    payload_index: np.ndarray  # (n,) flat chip positions of the payload chips
    payload_bit: np.ndarray  # (n,) which coded bit each payload chip carries
    payload_signs: np.ndarray  # (n,) ±1 spreading sequence


def _rng(secret: bytes, purpose: str) -> np.random.Generator:
    seed = hmac.new(secret, purpose.encode(), hashlib.sha256).digest()
    return np.random.default_rng(np.frombuffer(seed, dtype=np.uint32))


@functools.lru_cache(maxsize=8)
def layout(secret: bytes) -> Layout:
    """The chip layout of one key."""
    rng = _rng(secret, "provenance-layout-v1")
    order = rng.permutation(CHIPS * CHIPS)
    half = CHIPS * CHIPS // 2
    sync_mask = np.zeros(CHIPS * CHIPS, dtype=bool)
    sync_mask[order[:half]] = True
    signs = rng.choice(np.array([-1.0, 1.0]), CHIPS * CHIPS)
    payload_index = np.sort(order[half:])
    payload_bit = rng.permutation(np.arange(len(payload_index)) % coding.CODED_BITS)
    return Layout(
        sync_mask=sync_mask.reshape(CHIPS, CHIPS),
        sync_signs=np.where(sync_mask, signs, 0.0).reshape(CHIPS, CHIPS),
        payload_index=payload_index,
        payload_bit=payload_bit,
        payload_signs=signs[payload_index],
    )


def tile_chips(secret: bytes, coded: np.ndarray) -> np.ndarray:
    """One tile's chip values (±1, float32) for the coded payload bits ``coded`` (0/1)."""
    lay = layout(secret)
    chips = lay.sync_signs.ravel() * SYNC_WEIGHT
    bits = 2.0 * coded[lay.payload_bit] - 1.0
    chips[lay.payload_index] = lay.payload_signs * bits * PAYLOAD_WEIGHT
    return chips.reshape(CHIPS, CHIPS).astype(np.float32)


def render(chips: np.ndarray, width: int, height: int) -> np.ndarray:
    """The tiled pattern (float32, about ±1, smooth) for a ``width``×``height`` frame."""
    chip = height / CHIPS_PER_HEIGHT
    across = int(np.ceil(width / chip)) + 2
    down = int(np.ceil(height / chip)) + 2
    grid = np.tile(chips, (down // CHIPS + 1, across // CHIPS + 1))[:down, :across]
    size = (round(across * chip), round(down * chip))
    return cv2.resize(grid, size, interpolation=cv2.INTER_CUBIC)[:height, :width]


def _cyclic_render(chips: np.ndarray) -> np.ndarray:
    """``chips`` (one tile) rendered at ``CANONICAL_CHIP`` pixels per chip, as one period of
    the tiled pattern (float64)."""
    side = CHIPS * CANONICAL_CHIP
    big = cv2.resize(
        np.tile(chips.astype(np.float32), (3, 3)),
        (3 * side, 3 * side),
        interpolation=cv2.INTER_CUBIC,
    )
    return big[side : 2 * side, side : 2 * side].astype(np.float64)


def band_pass(picture: np.ndarray, chip_px: float) -> np.ndarray:
    """The band around the chip size that the verifier looks at (a difference of
    Gaussians): the host picture's low frequencies and the codec's finest noise go."""
    fine = cv2.GaussianBlur(picture, (0, 0), max(0.5, 0.2 * chip_px))
    coarse = cv2.GaussianBlur(picture, (0, 0), 1.6 * chip_px)
    return fine - coarse


def _cyclic_band(tile: np.ndarray) -> np.ndarray:
    side = tile.shape[0]
    big = band_pass(np.tile(tile, (3, 3)).astype(np.float32), CANONICAL_CHIP)
    return big[side : 2 * side, side : 2 * side].astype(np.float64)


@functools.lru_cache(maxsize=8)
def canonical_sync(secret: bytes) -> np.ndarray:
    """The sync part of a tile at ``CANONICAL_CHIP`` pixels per chip as the verifier sees
    it (band-passed, cyclic, zero-mean, unit norm): its matched filter."""
    tile = _cyclic_band(_cyclic_render(layout(secret).sync_signs))
    tile -= tile.mean()
    return tile / np.linalg.norm(tile)


@functools.cache
def canonical_chip() -> np.ndarray:
    """One chip at the tile's origin as the verifier sees it: the matched filter that reads
    every chip's value from a folded tile."""
    chips = np.zeros((CHIPS, CHIPS), dtype=np.float32)
    chips[0, 0] = 1.0
    tile = _cyclic_band(_cyclic_render(chips))
    return tile / np.linalg.norm(tile)
