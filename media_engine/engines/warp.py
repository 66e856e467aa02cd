"""Piecewise-affine warping over the face mesh, computed fast.

Both mesh engines (``avatar`` and ``swap``) move an image (the avatar or the presenter's
portrait) so that its landmarks land on other landmarks. Per-triangle ``cv2.warpAffine`` calls
cost milliseconds for a 900-triangle mesh; here the inverse map is computed once per frame on a
coarse grid instead (which triangle covers each grid point, and that triangle's affine map),
upsampled with bilinear interpolation (exact inside a triangle, a smooth blend across its
edges), and one ``cv2.remap`` samples the source image for the region only.

The coarse grid (``WarpGrid``) is what the GPU path consumes too: ``media_engine.engines.
render_graph`` upsamples it and samples the source with ONNX's ``GridSample``.
"""

from dataclasses import dataclass

import cv2
import numpy as np

# Grid points per face height: about 1/4 of a pixel step for a 200-pixel face.
GRID_POINTS_PER_FACE = 44
MIN_STEP = 2
MAX_STEP = 8


@dataclass(frozen=True)
class Region:
    """A rectangle of the output frame: x, y, width, height (clipped to the frame)."""

    x: int
    y: int
    w: int
    h: int

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y, self.y + self.h), slice(self.x, self.x + self.w)

    @property
    def empty(self) -> bool:
        return self.w <= 0 or self.h <= 0


def region_around(points: np.ndarray, frame_w: int, frame_h: int, margin: float) -> Region:
    """The bounding box of ``points`` grown by ``margin`` × its size, clipped to the frame."""
    lo = points.min(axis=0)
    hi = points.max(axis=0)
    pad = (hi - lo) * margin
    x0 = int(np.floor(max(0.0, lo[0] - pad[0])))
    y0 = int(np.floor(max(0.0, lo[1] - pad[1])))
    x1 = int(np.ceil(min(float(frame_w), hi[0] + pad[0])))
    y1 = int(np.ceil(min(float(frame_h), hi[1] + pad[1])))
    return Region(x0, y0, max(0, x1 - x0), max(0, y1 - y0))


def grid_step_for(face_height: float) -> int:
    return int(min(max(round(face_height / GRID_POINTS_PER_FACE), MIN_STEP), MAX_STEP))


@dataclass(frozen=True)
class WarpGrid:
    """The inverse map of a region on a coarse grid.

    ``map_xy`` (2, gh, gw) holds, for grid point (i, j) at output pixel
    (region.x + (j + 0.5) * step - 0.5, region.y + (i + 0.5) * step - 0.5), the source
    pixel it samples; ``coverage`` (gh, gw) is 1 where a mesh triangle covers the point.
    """

    region: Region
    step: int
    map_xy: np.ndarray
    coverage: np.ndarray


def triangle_affines(
    src: np.ndarray, dst: np.ndarray, triangles: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per triangle, the affine map dst -> src (K, 2, 3) and whether it is usable (K,)."""
    d = dst[triangles].astype(np.float64)  # K, 3, 2
    s = src[triangles].astype(np.float64)
    e1 = d[:, 1] - d[:, 0]
    e2 = d[:, 2] - d[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    valid = np.abs(det) > 1e-6
    inv_det = np.where(valid, 1.0 / np.where(valid, det, 1.0), 0.0)
    # Inverse of [e1 e2] (columns): maps dst offsets to barycentric (u, v).
    inv = np.empty((len(triangles), 2, 2))
    inv[:, 0, 0] = e2[:, 1] * inv_det
    inv[:, 0, 1] = -e2[:, 0] * inv_det
    inv[:, 1, 0] = -e1[:, 1] * inv_det
    inv[:, 1, 1] = e1[:, 0] * inv_det
    f1 = s[:, 1] - s[:, 0]
    f2 = s[:, 2] - s[:, 0]
    lin = np.stack([f1, f2], axis=2) @ inv  # K, 2, 2: dst offset -> src offset
    offset = s[:, 0] - np.einsum("kij,kj->ki", lin, d[:, 0])
    return np.concatenate([lin, offset[:, :, None]], axis=2), valid


def compute_grid(
    src: np.ndarray,
    dst: np.ndarray,
    triangles: np.ndarray,
    region: Region,
    step: int,
    fallback: np.ndarray | None = None,
) -> WarpGrid:
    """The coarse inverse map of ``region``: source points for each grid point.

    ``src``/``dst`` are (N, 2) landmark positions in the source image and the output frame.
    Grid points that no triangle covers take ``fallback``: a 2×3 affine dst -> src (e.g. the
    head's overall similarity), or a (2, gh, gw) map of its own (``affine_grid``); without
    one, the value of the nearest covered point.
    """
    gw = max(1, -(-region.w // step))
    gh = max(1, -(-region.h // step))
    d_all = np.take(np.asarray(dst, np.float64)[:, :2], triangles, axis=0)
    s_all = np.take(np.asarray(src, np.float64)[:, :2], triangles, axis=0)
    coef_a, coef_b, coef_c, keep = _grid_coefficients(s_all, d_all, region, step)
    d = np.take(d_all, keep, axis=0)
    j0, j1, i0, i1 = _grid_spans(d, region, step, gw, gh)
    nw = np.maximum(j1 - j0 + 1, 0)
    counts = nw * np.maximum(i1 - i0 + 1, 0)
    total = int(counts.sum())

    if fallback is None:
        map_xy = np.full((2, gh, gw), -1.0, np.float32)
    elif fallback.shape == (2, 3):
        map_xy = affine_grid(fallback, region, step)
    else:
        map_xy = np.array(fallback, np.float32, copy=True)
    coverage = np.zeros((gh, gw), np.float32)
    if total == 0:
        return WarpGrid(region, step, map_xy, coverage)

    # Every (triangle, grid point in its bounding box) pair; numpy's ``take`` is many times
    # faster than fancy indexing on these sizes.
    k = np.repeat(np.arange(len(d)), counts)
    local = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    row, col = np.divmod(local, np.take(nw, k))
    cj = np.take(j0, k) + col
    ci = np.take(i0, k) + row
    fj = cj.astype(np.float32)[:, None]
    fi = ci.astype(np.float32)[:, None]
    res = np.take(coef_a, k, axis=0) * fj + np.take(coef_b, k, axis=0) * fi
    res += np.take(coef_c, k, axis=0)  # columns: u, v, source x, source y
    eps = -1e-4
    inside = (res[:, 0] >= eps) & (res[:, 1] >= eps) & (res[:, 0] + res[:, 1] <= 1 - eps)
    flat = np.compress(inside, ci * gw + cj)
    hit = np.compress(inside, res, axis=0)
    np.put(map_xy[0], flat, hit[:, 2])
    np.put(map_xy[1], flat, hit[:, 3])
    np.put(coverage, flat, 1.0)
    if fallback is None:
        _fill_uncovered(map_xy, coverage)
    return WarpGrid(region, step, map_xy, coverage)


def _grid_spans(d: np.ndarray, region: Region, step: int, gw: int, gh: int):
    """Per triangle (K×3×2 vertices), the first and last grid column and row inside its
    extent, clipped to the grid (last < first: none): (j0, j1, i0, i1). Both axes at once,
    pairwise minimum/maximum: several times cheaper than axis reductions and ``np.clip``
    on these small arrays."""
    g = (d - np.array([region.x, region.y], np.float64) + 0.5) / step - 0.5
    lo = np.minimum(np.minimum(g[:, 0], g[:, 1]), g[:, 2])
    hi = np.maximum(np.maximum(g[:, 0], g[:, 1]), g[:, 2])
    first = np.minimum(np.maximum(np.ceil(lo), 0), [gw, gh]).astype(np.intp)
    last = np.minimum(np.maximum(np.floor(hi), -1), [gw - 1, gh - 1]).astype(np.intp)
    return first[:, 0], last[:, 0], first[:, 1], last[:, 1]


def grid_shape(region: Region, step: int) -> tuple[int, int]:
    return max(1, -(-region.h // step)), max(1, -(-region.w // step))


def affine_grid(m: np.ndarray, region: Region, step: int) -> np.ndarray:
    """The affine map ``m`` (output -> source) sampled on the region's grid: (2, gh, gw)."""
    gh, gw = grid_shape(region, step)
    px = region.x + (np.arange(gw) + 0.5) * step - 0.5
    py = region.y + (np.arange(gh) + 0.5) * step - 0.5
    out = np.empty((2, gh, gw), np.float32)
    out[0] = m[0, 0] * px[None, :] + m[0, 1] * py[:, None] + m[0, 2]
    out[1] = m[1, 0] * px[None, :] + m[1, 1] * py[:, None] + m[1, 2]
    return out


def _grid_coefficients(
    src: np.ndarray, dst: np.ndarray, region: Region, step: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per usable triangle, rows giving u, v, source x, source y from grid (gx, gy).

    Returns (A, B, C) each (K, 4) float32 with value = A * gx + B * gy + C, and the indices
    of the usable (non-degenerate) triangles. Elementwise only: batched 2×2 algebra in
    numpy costs more than the arithmetic itself.
    """
    ax, ay = dst[:, 0, 0], dst[:, 0, 1]
    e1x, e1y = dst[:, 1, 0] - ax, dst[:, 1, 1] - ay
    e2x, e2y = dst[:, 2, 0] - ax, dst[:, 2, 1] - ay
    det = e1x * e2y - e1y * e2x
    keep = np.flatnonzero(np.abs(det) > 1e-6)
    if len(keep) < len(det):
        ax, ay, e1x, e1y, e2x, e2y, det = (v[keep] for v in (ax, ay, e1x, e1y, e2x, e2y, det))
        src = np.take(src, keep, axis=0)
    inv = 1.0 / det
    # Pixel = origin + step * g, origin = region corner + step / 2 - 1 / 2.
    rx = region.x + 0.5 * step - 0.5 - ax
    ry = region.y + 0.5 * step - 0.5 - ay
    ua, ub, uc = e2y * inv * step, -e2x * inv * step, (e2y * rx - e2x * ry) * inv
    va, vb, vc = -e1y * inv * step, e1x * inv * step, (e1x * ry - e1y * rx) * inv
    s0x, s0y = src[:, 0, 0], src[:, 0, 1]
    f1x, f1y = src[:, 1, 0] - s0x, src[:, 1, 1] - s0y
    f2x, f2y = src[:, 2, 0] - s0x, src[:, 2, 1] - s0y
    a = np.stack([ua, va, f1x * ua + f2x * va, f1y * ua + f2y * va], axis=1)
    b = np.stack([ub, vb, f1x * ub + f2x * vb, f1y * ub + f2y * vb], axis=1)
    c = np.stack([uc, vc, s0x + f1x * uc + f2x * vc, s0y + f1y * uc + f2y * vc], axis=1)
    return a.astype(np.float32), b.astype(np.float32), c.astype(np.float32), keep


def _fill_uncovered(map_xy: np.ndarray, coverage: np.ndarray) -> None:
    """Give uncovered grid points the value of the nearest covered one (no fallback map)."""
    if coverage.all() or not coverage.any():
        return
    missing = (coverage == 0).astype(np.uint8)
    _, labels = cv2.distanceTransformWithLabels(
        missing, cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL
    )
    covered_idx = np.flatnonzero(coverage.ravel() > 0)
    # Labels number the zero pixels of ``missing`` (the covered ones) in raster order.
    source = np.take(covered_idx, labels.ravel() - 1)
    for plane in map_xy:
        plane.ravel()[:] = np.take(plane.ravel(), source)


def upsample_maps(grid: WarpGrid) -> tuple[np.ndarray, np.ndarray]:
    """Full-resolution maps (map_x, map_y) for the grid's region."""
    r, s = grid.region, grid.step
    gh, gw = grid.coverage.shape
    size = (gw * s, gh * s)
    map_x = cv2.resize(grid.map_xy[0], size, interpolation=cv2.INTER_LINEAR)[: r.h, : r.w]
    map_y = cv2.resize(grid.map_xy[1], size, interpolation=cv2.INTER_LINEAR)[: r.h, : r.w]
    return map_x, map_y


def upsample(grid: WarpGrid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-resolution maps (map_x, map_y) and coverage for the grid's region."""
    r, s = grid.region, grid.step
    gh, gw = grid.coverage.shape
    size = (gw * s, gh * s)
    map_x = cv2.resize(grid.map_xy[0], size, interpolation=cv2.INTER_LINEAR)[: r.h, : r.w]
    map_y = cv2.resize(grid.map_xy[1], size, interpolation=cv2.INTER_LINEAR)[: r.h, : r.w]
    cover = cv2.resize(grid.coverage, size, interpolation=cv2.INTER_LINEAR)[: r.h, : r.w]
    return map_x, map_y, cover


# A fold: neighbouring grid points whose source points lie more than this many grid steps
# apart (a smooth map moves about one).
FOLD_JUMP = 4.0


def fold_cells(grid: WarpGrid) -> np.ndarray:
    """(gh + 1, gw + 1) bool: the cells of the grid (cell (i, j) lies between grid points
    i - 1, i and j - 1, j; the first and last are the region's half-step borders) with a
    fold on an edge, where the source jumps between covered neighbours (a nose hiding the
    far cheek in a turn, a cheek's outline over the hair)."""
    mx, my = grid.map_xy
    limit = (FOLD_JUMP * grid.step) ** 2
    gh, gw = mx.shape
    cells = np.zeros((gh + 1, gw + 1), bool)
    across = np.square(mx[:, 1:] - mx[:, :-1]) + np.square(my[:, 1:] - my[:, :-1]) > limit
    down = np.square(mx[1:] - mx[:-1]) + np.square(my[1:] - my[:-1]) > limit
    if not (across.any() or down.any()):  # most frames: no fold, and no more to do
        return cells
    covered = grid.coverage > 0
    across &= covered[:, 1:] & covered[:, :-1]
    down &= covered[1:] & covered[:-1]
    cells[:-1, 1:-1] |= across  # the cells above and below a jumping horizontal edge
    cells[1:, 1:-1] |= across
    cells[1:-1, :-1] |= down  # left and right of a jumping vertical edge
    cells[1:-1, 1:] |= down
    return cells


def _cell_edges(cells: int, step: int, size: int) -> np.ndarray:
    """Pixel bounds of the grid's cells along one axis: cell k covers the pixels from
    (k - 0.5) * step to (k + 0.5) * step, clipped to the region."""
    return np.clip(np.round((np.arange(cells + 1) - 0.5) * step), 0, size).astype(int)


def refine_folds(
    grid: WarpGrid,
    maps: tuple[np.ndarray, np.ndarray, np.ndarray],
    src: np.ndarray,
    dst: np.ndarray,
    triangles: np.ndarray,
    fallback: np.ndarray,
) -> Region | None:
    """Exact per-pixel maps (``maps``: ``upsample``'s, changed in place) in the grid cells
    that hold a fold. Between two grid points on either side of a fold the upsampled map
    sweeps through the source between them, drawing what the fold hides (the nose's side,
    the face's rim) as a thin dark line; there each pixel takes its own triangle. Only the
    triangles reaching those cells are rasterised, in their drawing order. Returns the
    refined box (in the grid region's pixels), None when there was no fold."""
    cells = fold_cells(grid)
    if not cells.any():
        return None
    r, s = grid.region, grid.step
    ys, xs = _cell_edges(cells.shape[0], s, r.h), _cell_edges(cells.shape[1], s, r.w)
    rows, cols = np.nonzero(cells)
    y0, y1 = ys[rows.min()], ys[rows.max() + 1]
    x0, x1 = xs[cols.min()], xs[cols.max() + 1]
    if x1 <= x0 or y1 <= y0:
        return None
    # Which triangles' boxes reach a fold cell (a summed-area table of the cells).
    table = cv2.integral(cells.astype(np.uint8))
    corners = np.take(np.asarray(dst, np.float64)[:, :2], triangles, axis=0) - [r.x, r.y]
    top = np.array(cells.shape) - 1
    lo = np.clip(np.floor(corners.min(axis=1) / s + 0.5).astype(int)[:, ::-1], 0, top)
    hi = np.clip(np.floor(corners.max(axis=1) / s + 0.5).astype(int)[:, ::-1], 0, top)
    reach = (table[hi[:, 0] + 1, hi[:, 1] + 1] - table[lo[:, 0], hi[:, 1] + 1]
             - table[hi[:, 0] + 1, lo[:, 1]] + table[lo[:, 0], lo[:, 1]])  # fmt: skip
    part = Region(r.x + x0, r.y + y0, x1 - x0, y1 - y0)
    exact = compute_grid(src, dst, triangles[reach > 0], part, 1, fallback)
    pixels = np.repeat(np.repeat(cells, np.diff(ys), axis=0), np.diff(xs), axis=1)
    pixels = pixels[y0:y1, x0:x1]
    for target, values in zip(maps, (*exact.map_xy, exact.coverage), strict=True):
        target[y0:y1, x0:x1][pixels] = values[pixels]
    return Region(x0, y0, x1 - x0, y1 - y0)


# A seam: neighbouring output pixels whose source points lie more than this many pixels
# apart (a smooth map moves one or two), or whose coverage differs by half or more.
SEAM_JUMP = 3.0


def _jumps(maps: tuple[np.ndarray, np.ndarray, np.ndarray], axis: int) -> np.ndarray:
    """Between each pixel and the next along ``axis``: whether the map jumps there."""
    map_x, map_y, cover = (np.diff(m, axis=axis) for m in maps)
    return (np.square(map_x) + np.square(map_y) > SEAM_JUMP * SEAM_JUMP) | (np.abs(cover) >= 0.5)


def seam_pixels(maps: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """Where the per-pixel map jumps (the edge of a fold: the far cheek's outline over the
    hair or the backdrop, the nose's side over the cheek): both pixels of each such pair."""
    across, down = _jumps(maps, 1), _jumps(maps, 0)
    seam = np.zeros(maps[0].shape, bool)
    seam[:, 1:] |= across
    seam[:, :-1] |= across
    seam[1:] |= down
    seam[:-1] |= down
    return seam


def soften_seams(picture: np.ndarray, maps: tuple[np.ndarray, ...], box: Region) -> None:
    """The pixels of ``box`` (of ``picture``, the region the maps cover) on a seam take the
    mean of their 3×3 neighbourhood, in place: a fold's edge, drawn pixel by pixel, has no
    antialiasing of its own (a stair-stepped outline at the far cheek past ~20° of yaw)."""
    rows, cols = box.slices
    seam = seam_pixels(tuple(m[rows, cols] for m in maps))
    if not seam.any():
        return
    part = picture[rows, cols]
    part[seam] = cv2.blur(part, (3, 3))[seam]


def remap_region(source: np.ndarray, grid: WarpGrid) -> tuple[np.ndarray, np.ndarray]:
    """The source sampled over the grid's region (region-sized image) and the coverage."""
    map_x, map_y, cover = upsample(grid)
    warped = cv2.remap(
        source, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    return warped, cover


def blend_into(frame: np.ndarray, region: Region, image: np.ndarray, alpha: np.ndarray) -> None:
    """frame[region] = image × alpha + frame[region] × (1 - alpha), in place (alpha 0..1)."""
    roi = frame[region.slices]
    a = alpha[..., None] if alpha.ndim == 2 else alpha
    roi[:] = (roi + (image.astype(np.float32) - roi) * a + 0.5).astype(np.uint8)


def similarity_fit(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The least-squares similarity (2×3) taking ``src`` points onto ``dst`` points."""
    src = src.astype(np.float64)
    dst = dst.astype(np.float64)
    ms, md = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - ms, dst - md
    var = (a**2).sum()
    if var < 1e-12:
        return np.array([[1.0, 0.0, md[0] - ms[0]], [0.0, 1.0, md[1] - ms[1]]])
    p = (a[:, 0] * b[:, 0] + a[:, 1] * b[:, 1]).sum() / var
    q = (a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]).sum() / var
    lin = np.array([[p, -q], [q, p]])
    t = md - lin @ ms
    return np.array([[p, -q, t[0]], [q, p, t[1]]])


def apply_affine(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ m[:, :2].T + m[:, 2]


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The affine ``a ∘ b`` (apply b first)."""
    a3 = np.vstack([a, [0.0, 0.0, 1.0]])
    b3 = np.vstack([b, [0.0, 0.0, 1.0]])
    return (a3 @ b3)[:2]


def invert(m: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(m.astype(np.float64))


def warp_per_triangle(
    source: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    triangles: np.ndarray,
    out: np.ndarray,
) -> np.ndarray:
    """The stock piecewise-affine warp: one ``cv2.warpAffine`` per triangle, pasted by mask.

    The reference the fast path is checked against, and the benchmark's baseline.
    """
    h, w = out.shape[:2]
    for tri in triangles:
        d = dst[tri].astype(np.float32)
        s = src[tri].astype(np.float32)
        x0, y0 = np.floor(d.min(axis=0)).astype(int)
        x1, y1 = np.ceil(d.max(axis=0)).astype(int) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 <= x0 or y1 <= y0:
            continue
        e1, e2 = d[1] - d[0], d[2] - d[0]
        if abs(e1[0] * e2[1] - e1[1] * e2[0]) < 1e-6:
            continue
        m = cv2.getAffineTransform((d - [x0, y0]).astype(np.float32), s)
        patch = cv2.warpAffine(
            source,
            m,
            (x1 - x0, y1 - y0),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillConvexPoly(mask, np.round((d - [x0, y0]) * 16).astype(np.int32), 1, cv2.LINE_8, 4)
        roi = out[y0:y1, x0:x1]
        roi[mask > 0] = patch[mask > 0]
    return out
