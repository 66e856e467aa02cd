"""Small compositing steps of the presenter rig: alpha blends, the head's overall affine,
the neck's bend."""

import cv2
import numpy as np

from media_engine.engines.warp import Region, affine_grid


def blend(part: np.ndarray, layer: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
    """``layer`` (BGRA uint8) over ``part`` (BGR uint8): a new image. ``extra`` (H×W,
    0..1 float32) multiplies the layer's alpha."""
    a = layer[..., 3].astype(np.float32) * (1 / 255)
    if extra is not None:
        a *= extra
    bgr = cv2.cvtColor(layer, cv2.COLOR_BGRA2BGR)
    return cv2.blendLinear(bgr, part, a, 1 - a)


def blend_layer(image: np.ndarray, layer: np.ndarray, origin: tuple[int, int]) -> None:
    """A BGRA layer over a BGR uint8 image at ``origin`` (x, y), in place."""
    h, w = layer.shape[:2]
    x, y = origin
    image[y : y + h, x : x + w] = blend(np.ascontiguousarray(image[y : y + h, x : x + w]), layer)


def head_affine(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The least-squares affine (2×3) taking ``src`` points onto ``dst`` points."""
    a = np.hstack([src, np.ones((len(src), 1))])
    m, *_ = np.linalg.lstsq(a, dst, rcond=None)
    return m.T


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
