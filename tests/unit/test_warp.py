"""The fast mesh warp against the stock per-triangle warp, and the GPU graph against OpenCV."""

import cv2
import numpy as np
import pytest

from media_engine.engines import face_regions as fr
from media_engine.engines.portraits import default_avatar
from media_engine.engines.render_graph import CpuRenderer, OnnxRenderer
from media_engine.engines.warp import (
    compute_grid,
    region_around,
    remap_region,
    similarity_fit,
    warp_per_triangle,
)
from tests.engine_helpers import open_mouth


def deformed():
    portrait = default_avatar()
    src = portrait.landmarks[:, :2].astype(np.float64)
    moved = open_mouth(portrait.landmarks, 0.5)[:, :2].astype(np.float64)
    # Tilt, shrink and shift it as well.
    a = np.radians(8)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    dst = (moved - 320) @ rot.T * 0.8 + [330, 300]
    return portrait.image, src, dst


def test_fast_warp_matches_the_per_triangle_warp_inside_the_face():
    image, src, dst = deformed()
    tris = fr.render_triangles()
    region = region_around(dst[fr.FACE_OVAL], 640, 640, margin=0.05)
    grid = compute_grid(src, dst, tris, region, 2, fallback=similarity_fit(dst, src))
    fast, cover = remap_region(image, grid)
    reference = warp_per_triangle(image, src, dst, tris, np.zeros_like(image))[region.slices]
    inside = cv2.erode((cover > 0.999).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert inside.mean() > 0.4
    diff = np.abs(fast.astype(int) - reference.astype(int))[inside]
    assert diff.mean() < 3.0
    assert np.percentile(diff, 95) < 12


def test_coverage_is_the_face_and_fallback_fills_the_rest():
    _, src, dst = deformed()
    region = region_around(dst[fr.FACE_OVAL], 640, 640, margin=0.3)
    fallback = similarity_fit(dst, src)
    grid = compute_grid(src, dst, fr.render_triangles(), region, 4, fallback=fallback)
    assert 0.2 < grid.coverage.mean() < 0.9
    # A grid corner is outside the face: it takes the fallback map exactly.
    px = region.x + 0.5 * 4 - 0.5
    py = region.y + 0.5 * 4 - 0.5
    expected = fallback @ [px, py, 1.0]
    assert grid.coverage[0, 0] == 0
    np.testing.assert_allclose(grid.map_xy[:, 0, 0], expected, atol=1e-3)


def test_collapsed_triangles_do_not_break_the_grid():
    _, src, dst = deformed()
    dst = dst.copy()
    dst[fr.UPPER_LIDS] = dst[fr.LOWER_LIDS]  # both eyes shut: zero-area triangles
    region = region_around(dst[fr.FACE_OVAL], 640, 640, margin=0.05)
    grid = compute_grid(src, dst, fr.render_triangles(), region, 3)
    assert np.isfinite(grid.map_xy).all()


@pytest.mark.parametrize("lab, blend", [(False, False), (True, True)])
def test_onnx_render_graph_equals_opencv(lab, blend):
    image, src, dst = deformed()
    source = cv2.cvtColor(image, cv2.COLOR_BGR2LAB) if lab else image
    region = region_around(dst[fr.FACE_OVAL], 640, 640, margin=0.05)
    grid = compute_grid(
        src, dst, fr.render_triangles(), region, 4, fallback=similarity_fit(dst, src)
    )
    kwargs = {}
    if lab:
        kwargs.update(
            gain=np.array([1.1, 0.9, 1.05], np.float32), offset=np.array([-6, 4, 2], np.float32)
        )
    if blend:
        rng = np.random.default_rng(1)
        base = rng.integers(0, 255, (region.h, region.w, 3), dtype=np.uint8)
        kwargs.update(base=base, alpha=cv2.GaussianBlur(grid.coverage, (0, 0), 1.5))
    onnx_out = OnnxRenderer(source, lab=lab, blend=blend, providers=["CPUExecutionProvider"])
    cpu_out = CpuRenderer(source, lab=lab, blend=blend)
    a = onnx_out.render(grid, **kwargs)
    b = cpu_out.render(grid, **kwargs)
    assert a.shape == b.shape == (region.h, region.w, 3)
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.mean() < 1.0
    assert np.percentile(diff, 99.9) <= 6


def turned_head(yaw: float):
    """The avatar's head posed by the rig at ``yaw`` and the grid it draws with."""
    from media_engine.engines import rig as rg
    from media_engine.engines.avatar import AvatarEngine
    from media_engine.engines.presenter import load_presenter
    from media_engine.engines.warp import grid_step_for, upsample

    engine = AvatarEngine(load_presenter("mei"))
    fit = engine.fitted(640, 480)
    pose = rg.Pose(yaw, 0.0, 0.0, np.zeros(2))
    posed = rg.pose_head(fit.rest, fit.pivot, engine.triangles, fit.rest_area, pose)
    region = region_around(posed.points, 640, 480, margin=0.0)
    step = grid_step_for(float(np.ptp(posed.points[fr.FACE_OVAL, 1]))) + 1
    back = cv2.invertAffineTransform(similarity_fit(posed.points, fit.rest[:, :2]))
    grid = compute_grid(fit.rest[:, :2], posed.points, posed.triangles, region, step, back)
    exact = compute_grid(fit.rest[:, :2], posed.points, posed.triangles, region, 1, back)
    args = (fit.rest[:, :2], posed.points, posed.triangles, back)
    return grid, upsample(grid), exact, args


def far_off(maps, exact) -> int:
    """Covered pixels whose source lies over 3 px from the exact per-pixel map's."""
    both = (maps[2] > 0.99) & (exact.coverage > 0)
    miss = np.hypot(maps[0] - exact.map_xy[0], maps[1] - exact.map_xy[1])
    return int((both & (miss > 3)).sum())


def test_a_fold_is_drawn_pixel_by_pixel_not_swept_through():
    from media_engine.engines.warp import fold_cells, refine_folds

    grid, maps, exact, args = turned_head(35)
    assert fold_cells(grid).any()
    before = far_off(maps, exact)
    refine_folds(grid, maps, *args)
    after = far_off(maps, exact)
    # Upsampled between grid points on either side of the nose and the far cheek's outline,
    # the map sweeps through what the fold hides; refined, those pixels take their own.
    assert before > 300 and after < before / 5, (before, after)


def test_a_frontal_head_has_no_fold_and_keeps_its_grid():
    from media_engine.engines.warp import fold_cells, refine_folds

    grid, maps, _, args = turned_head(0)
    assert not fold_cells(grid).any()
    kept = [m.copy() for m in maps]
    refine_folds(grid, maps, *args)
    for m, k in zip(maps, kept, strict=True):
        assert np.array_equal(m, k)


def test_a_folds_edge_is_antialiased_and_nothing_else_changes():
    """Drawn pixel by pixel, a fold's edge (the far cheek's outline, the nose's side) had
    no antialiasing: a stair-stepped outline past ~20° of yaw. Its pixels now take their
    3×3 mean; every other pixel stays as the maps drew it."""
    from media_engine.engines.avatar import AvatarEngine
    from media_engine.engines.presenter import load_presenter
    from media_engine.engines.warp import refine_folds, seam_pixels, soften_seams

    grid, maps, _, args = turned_head(35)
    box = refine_folds(grid, maps, *args)
    assert box is not None
    head = AvatarEngine(load_presenter("mei")).fitted(640, 480).head[..., :3]
    drawn = cv2.remap(head, maps[0], maps[1], cv2.INTER_LINEAR)
    drawn[maps[2] < 0.5] = (200, 170, 150)  # the backdrop where the head does not cover
    before = drawn.copy()
    soften_seams(drawn, maps, box)
    seam = np.zeros(drawn.shape[:2], bool)
    seam[box.slices] = seam_pixels(tuple(m[box.slices] for m in maps))
    assert seam.sum() > 50
    changed = (drawn != before).any(axis=2)
    assert changed.any() and not (changed & ~seam).any()

    def steepness(picture: np.ndarray) -> float:
        gray = cv2.cvtColor(picture, cv2.COLOR_BGR2GRAY).astype(float)
        return float(np.abs(np.diff(gray, axis=1))[seam[:, 1:]].mean())

    assert steepness(drawn) < 0.75 * steepness(before)


def test_a_frontal_head_is_not_refined():
    from media_engine.engines.warp import refine_folds

    grid, maps, _, args = turned_head(0)
    assert refine_folds(grid, maps, *args) is None
