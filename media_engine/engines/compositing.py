"""Small compositing steps of the presenter rig: alpha blends, the head's overall affine,
the neck's bend."""

import cv2
import numpy as np

from media_engine.engines.warp import Region, affine_grid

Layer = tuple[np.ndarray, np.ndarray]  # BGR uint8, alpha uint8 (both contiguous)


def split(bgra: np.ndarray) -> Layer:
    """A BGRA image as a layer: its colour and its alpha apart (remapped and blended apart:
    cheaper than strided four-channel work). Where the layer is transparent its colour is
    bled in from the opaque parts nearby, so that resampling at the edge draws no halo."""
    alpha = bgra[..., 3].astype(np.float32) * (1 / 255)
    bgr = bgra[..., :3].astype(np.float32)
    a = alpha[..., None]
    spread = max(3, int(0.01 * max(alpha.shape)) | 1)
    weight = cv2.GaussianBlur(alpha, (0, 0), spread)[..., None]
    fill = cv2.GaussianBlur(bgr * a, (0, 0), spread) / np.maximum(weight, 1e-3)
    bled = bgr * a + np.where(weight > 1e-3, fill, bgr) * (1 - a)
    return np.clip(bled + 0.5, 0, 255).astype(np.uint8), np.ascontiguousarray(bgra[..., 3])


def merged(layer: Layer) -> np.ndarray:
    """A layer as one BGRA array (one remap moves colour and alpha together)."""
    return cv2.merge([*cv2.split(layer[0]), layer[1]])


def unmerged(bgra: np.ndarray) -> Layer:
    return cv2.cvtColor(bgra, cv2.COLOR_BGRA2BGR), cv2.extractChannel(bgra, 3)


def blend(
    part: np.ndarray, bgr: np.ndarray, alpha: np.ndarray, extra: np.ndarray | None = None
) -> np.ndarray:
    """``bgr`` with ``alpha`` (uint8) over ``part`` (BGR uint8): a new image. ``extra``
    (float32 0..1) multiplies the alpha.

    In 8-bit fixed point (``bgr·a/255 + part·(255−a)/255``, each product rounded, ``a``
    rounded to 8 bits first when ``extra`` scales it): within one level of the float blend
    (two with ``extra``), exact where the alpha is 0 or 255, and about twice as fast as
    ``cv2.blendLinear`` with float weights on one thread. Two new arrays only (the
    three-channel alpha, turned into the part's weighted copy in place, and the result):
    each further temporary cost about as much as the arithmetic on a head-sized region."""
    a = alpha if extra is None else cv2.multiply(alpha, extra, dtype=cv2.CV_8U)
    a3 = cv2.cvtColor(a, cv2.COLOR_GRAY2BGR)  # the same as merging a thrice, faster
    over = cv2.multiply(bgr, a3, scale=1 / 255)
    cv2.bitwise_not(a3, dst=a3)
    cv2.multiply(part, a3, dst=a3, scale=1 / 255)
    return cv2.add(over, a3, dst=over)


def torso_rows(alpha: np.ndarray) -> tuple[int, int]:
    """(top, bottom) rows of an alpha crop: above ``top`` every row is transparent, from
    ``bottom`` on every row is opaque. Blending there changes nothing (the weights are exactly
    0 or 1), so the body blends only the rows between (and the neck only those above
    ``bottom``)."""
    if alpha.size == 0:
        return 0, 0
    # numpy's row reductions: several times cheaper here than ``cv2.reduce`` along rows.
    row_max, row_min = alpha.max(axis=1), alpha.min(axis=1)
    shown = np.flatnonzero(row_max)
    top = int(shown[0]) if len(shown) else len(row_max)
    see_through = np.flatnonzero(row_min < 255)
    bottom = int(see_through[-1]) + 1 if len(see_through) else 0
    return min(top, bottom), bottom


def crop(layer: Layer, slices: tuple[slice, slice]) -> Layer:
    return layer[0][slices], layer[1][slices]


def head_affine(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The least-squares affine (2×3) taking ``src`` points onto ``dst`` points."""
    a = np.hstack([src, np.ones((len(src), 1))])
    m, *_ = np.linalg.lstsq(a, dst, rcond=None)
    return m.T


def affine_solver(src: np.ndarray) -> np.ndarray:
    """For fixed ``src`` points (N×2): the (3, N) matrix ``s`` with ``(s @ dst).T`` the
    least-squares affine taking them onto ``dst`` (``head_affine`` without a solve per frame)."""
    return np.linalg.pinv(np.hstack([src, np.ones((len(src), 1))]))


def smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


NECK_STEP = 8


def neck_maps(
    region: Region, jaw: np.ndarray, top_y: float, collar_y: float
) -> tuple[np.ndarray, np.ndarray]:
    """Source maps for the neck layer over ``region``: still at the collar, following the
    jaw's affine (rest -> posed) at the top of the neck, smoothly between (computed on a
    coarse grid and upsampled: the map is smooth)."""
    inv = np.linalg.inv(np.vstack([jaw, [0, 0, 1]]))[:2]
    step = NECK_STEP
    still = affine_grid(np.eye(2, 3), region, step)
    moved = affine_grid(inv, region, step)
    t = smoothstep((collar_y - still[1]) / max(collar_y - top_y, 1.0)).astype(np.float32)
    grid = still + (moved - still) * t[None]
    gh, gw = grid.shape[1:]
    size = (gw * step, gh * step)
    map_x = cv2.resize(grid[0], size, interpolation=cv2.INTER_LINEAR)[: region.h, : region.w]
    map_y = cv2.resize(grid[1], size, interpolation=cv2.INTER_LINEAR)[: region.h, : region.w]
    return map_x, map_y
