"""Embedding: the session's pattern added to the luma of every fused frame, weighted by a
perceptual mask.

The tag carries the key, the session and the minute the session's mark began: it stays the
same for the whole session (a running VP8 encoder at a low bitrate leaves flat regions as
they were, so a tag that changed every minute would leave frames carrying parts of two
tags). The pattern is rendered once per frame size and kept as a uint8 plane of magnitudes
(in 1/``SUBLEVELS`` levels, ``PEAK`` levels at most) and a plane of its signs. Each frame
gets a mask from its own texture, measured on the frame at 1/8 size (2×2 pixels averaged
per sample, so that a render's pixel dither is not taken for texture): flat regions (a
smooth background, where a faint mottle would show; texture under ``TEXTURE_FLAT``) get
``FLOOR`` of the peak, and so does the flat side of an edge (the texture measure is the
minimum over neighbouring samples: no halo); textured ones get up to all of it, and the
whole mask is scaled down so that the mark's mean energy stays within ``RMS_BUDGET`` levels
(PSNR ≥ 40 dB). For the first ``START_FRAMES`` frames of the stream and after the frame
size changes, flat regions get ``START_FLOOR`` within ``START_RMS_BUDGET`` (a starting or
catching-up video encoder would drop less), then down to the steady strength over the next
``RAMP_FRAMES``; ``SessionMark.restart`` starts that again (for whoever rebuilds the video
encoder downstream at the same size: a fresh libvpx encoder loses the steady mark for
more than a second). The weighted pattern is brought to whole levels with a 4×4 ordered dither:
on a flat region a mark of about ±1 level becomes a smooth swell of pixels one level up or
down instead of hard-edged ±1 blotches (no contour where a level is crossed), and a
fraction of a level keeps its share instead of rounding to nothing. The same value goes on
B, G and R, which moves luma by that value and leaves the colour alone. About 0.4 ms per
640×480 frame on one thread (bench/provenance.py).
"""

import time
from collections.abc import Callable

import cv2
import numpy as np

from media_engine.provenance import payload as coding
from media_engine.provenance.pattern import render, tile_chips

PEAK = 6.0  # levels where the picture is textured enough to hide the most
FLOOR = 0.14  # share of the peak on flat regions (about ±0.85 level; docs/provenance.md)
TEXTURE_FLAT = 4.0  # mean |Laplacian| (levels, on the 1/8-size luma) still counted flat
TEXTURE_FULL = 16.0  # ... and from where the full peak goes on
RMS_BUDGET = 2.2  # root-mean-square of the mark over the frame, in levels (PSNR >= 40.5 dB)
# A video encoder that starts (a session's first frames, or a new frame size) is starved
# for about half a second and quantizes a faint mark away on flat regions: for its first
# second, flat regions get more (docs/provenance.md, "the encoder's first second").
START_FRAMES = 15  # half a second at 30 fps
START_FLOOR = 0.45
START_RMS_BUDGET = 2.4  # PSNR >= 40.1 dB
RAMP_FRAMES = 30  # ... then down to the steady strength over a second more
_PATTERN_RMS = 0.86  # RMS of the rendered ±1 pattern (cubic interpolation)
MASK_STEP = 8  # the mask looks at every 8th pixel
SUBLEVELS = 16  # the pattern is kept in 1/16 levels and dithered to whole levels
# A 4×4 ordered (Bayer) dither: a fractional level becomes that share of pixels a level up,
# in a 4-pixel pattern with no low-frequency content (no contour where a level is crossed).
BAYER = np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]], np.uint8)
TINY = 16  # frames with a side below this (a thumbnail of a thumbnail) are not marked


def pattern_planes(secret: bytes, tag: int, width: int, height: int) -> tuple[np.ndarray, ...]:
    """(plus, minus): the pattern for one tag at one frame size, at ``PEAK`` levels, in
    1/``SUBLEVELS`` levels."""
    chips = tile_chips(secret, coding.encode(tag))
    levels = render(chips, width, height) * np.float32(PEAK * SUBLEVELS)
    # Rounded and saturated to uint8 by OpenCV (|negative part| for ``minus``).
    return cv2.convertScaleAbs(cv2.max(levels, 0.0)), cv2.convertScaleAbs(cv2.min(levels, 0.0))


def dither_plane(width: int, height: int) -> np.ndarray:
    """The ordered dither's thresholds (0..SUBLEVELS-1) over a ``width``×``height`` frame."""
    return np.ascontiguousarray(np.tile(BAYER, (-(-height // 4), -(-width // 4)))[:height, :width])


def to_levels(sublevels: np.ndarray, dither: np.ndarray) -> np.ndarray:
    """Whole levels from 1/``SUBLEVELS`` levels: floor((v + dither) / SUBLEVELS), whose mean
    over the dither's 4×4 cells is v / SUBLEVELS (uint8)."""
    summed = cv2.add(sublevels, dither)
    # convertScaleAbs rounds; the offset makes that the floor (no fraction is k/16 + 1/2).
    return cv2.convertScaleAbs(summed, alpha=1 / SUBLEVELS, beta=-(SUBLEVELS - 1) / 2 / SUBLEVELS)


def perceptual_mask(
    frame: np.ndarray,
    strength: float = 1.0,
    *,
    floor: float = FLOOR,
    budget: float = RMS_BUDGET,
) -> np.ndarray:
    """How much of the peak each pixel gets (uint8, 255 = all), from the frame's texture:
    ``floor`` of it on flat regions, the whole mark's RMS within ``budget`` levels."""
    height, width = frame.shape[:2]
    # 2×2 pixels averaged per sample (bilinear at 1/8), not one pixel: a render's pixel
    # dither hides nothing at the chip's scale and must not count as texture.
    small = cv2.resize(
        frame, (-(-width // MASK_STEP), -(-height // MASK_STEP)), interpolation=cv2.INTER_LINEAR
    )
    gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32)
    # Texture, not shading: a smooth gradient has no second derivative. The minimum over
    # the neighbours keeps the mark off the flat side of an edge (no halo round the head).
    spread = cv2.blur(np.abs(cv2.Laplacian(gray, cv2.CV_32F, ksize=1)), (3, 3))
    spread = cv2.erode(spread, np.ones((3, 3), np.uint8))
    ramp = np.clip((spread - TEXTURE_FLAT) / (TEXTURE_FULL - TEXTURE_FLAT), 0.0, 1.0)
    share = floor + (1.0 - floor) * ramp
    rms = float(np.sqrt(np.mean(share * share))) * PEAK * _PATTERN_RMS
    share *= min(1.0, budget / rms) * strength
    small_mask = np.clip(share * 255.0, 0, 255).astype(np.uint8)
    return cv2.resize(small_mask, (width, height), interpolation=cv2.INTER_LINEAR)


def start_strength(frame_number: int) -> tuple[float, float]:
    """(floor, budget) for the ``frame_number``-th frame (from 1) since the stream began or
    changed size: the start's for ``START_FRAMES``, then down to the steady ones over
    ``RAMP_FRAMES`` (a sudden drop on the flat regions made a running VP8 encoder lose the
    mark for most of a second)."""
    if frame_number <= START_FRAMES:
        return START_FLOOR, START_RMS_BUDGET
    if frame_number >= START_FRAMES + RAMP_FRAMES:
        return FLOOR, RMS_BUDGET
    share = (frame_number - START_FRAMES) / RAMP_FRAMES
    return (
        START_FLOOR + share * (FLOOR - START_FLOOR),
        START_RMS_BUDGET + share * (RMS_BUDGET - START_RMS_BUDGET),
    )


class SessionMark:
    """Marks one session's frames (one thread at a time, like the engine)."""

    def __init__(
        self,
        secret: bytes,
        session_tag: int,
        *,
        clock: Callable[[], float] = time.time,
        strength: float = 1.0,
    ) -> None:
        self.secret = secret
        self.session_tag = session_tag
        self.clock = clock
        self.strength = strength
        self._minute: int | None = None  # the minute of the session's first marked frame
        self._key: tuple[int, int] | None = None
        self._planes: tuple[np.ndarray, ...] | None = None
        self._frames_since_change = 0  # frames marked since the stream began or changed size

    def restart(self) -> None:
        """The next frame is the first of a new stream: the start's strength again (call it
        when the video encoder downstream is rebuilt; a new frame size does it by itself)."""
        self._frames_since_change = 0

    def tag_at(self, minute: int) -> int:
        return coding.encipher(self.secret, coding.Payload(minute, self.session_tag))

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """Add the mark to a BGR (H×W×3 uint8, C-contiguous) frame in place."""
        height, width = frame.shape[:2]
        if min(height, width) < TINY:
            return frame  # OpenCV reads arrays this small as scalars; no mark survives here
        if self._minute is None:
            self._minute = int(self.clock() // 60) % (1 << coding.MINUTE_BITS)
        key = (width, height)
        if key != self._key or self._planes is None:
            plus, minus = pattern_planes(self.secret, self.tag_at(self._minute), width, height)
            # The two parts never overlap: one plane of magnitudes and where it is positive.
            self._planes = (
                cv2.add(plus, minus),
                cv2.compare(plus, 0, cv2.CMP_GT),
                dither_plane(width, height),
            )
            self._key, self._frames_since_change = key, 0
        magnitude, positive, dither = self._planes
        self._frames_since_change += 1
        floor, budget = start_strength(self._frames_since_change)
        mask = perceptual_mask(frame, self.strength, floor=floor, budget=budget)
        # One full-frame multiply instead of one per part (the same values), in sublevels;
        # each part spread to three channels in one reused buffer (``cvtColor`` from gray:
        # the same as merging it thrice, faster, and no further full-frame temporaries).
        scaled = to_levels(cv2.multiply(magnitude, mask, scale=1 / 255.0), dither)
        plus = cv2.bitwise_and(scaled, positive)
        minus = cv2.subtract(scaled, plus, dst=scaled)
        three = cv2.cvtColor(plus, cv2.COLOR_GRAY2BGR)
        cv2.add(frame, three, dst=frame)
        cv2.subtract(frame, cv2.cvtColor(minus, cv2.COLOR_GRAY2BGR, dst=three), dst=frame)
        return frame
