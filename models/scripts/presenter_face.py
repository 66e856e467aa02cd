"""The presenters' heads: the canonical face mesh morphed per presenter, shaded per pixel from
its normals, with eyes, brows, lips, ears and the mouth interior (used by make_presenters.py).
"""

import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import presenter_paint as pp  # noqa: E402
from make_default_avatar import close_mouth  # noqa: E402

from media_engine.engines import face_regions as fr  # noqa: E402
from media_engine.perception import topology  # noqa: E402

TRIANGLES = topology.triangles()
SCALE = 20.0  # canvas pixels per canonical unit (outer eye corners 180 px apart)
CENTRE = (640.0, 322.0)


@dataclass(frozen=True)
class Look:
    skin: tuple  # BGR albedo
    lip: tuple
    iris: tuple
    brow: tuple
    eye_gain: float  # larger eyes (stylised)
    jaw: float  # jaw width factor
    cheek: float  # cheek/temple width factor
    lips_full: float  # lip height factor
    nose_w: float
    mouth_w: float
    brow_lift: float  # pixels
    blush: float


def morph(look: Look) -> np.ndarray:
    """The presenter's 468 landmarks (canvas pixels, z with MediaPipe's sign)."""
    p = topology.canonical_points().astype(np.float64).copy()
    y = p[:, 1]
    lower = np.clip((y - 1.0) / 6.5, 0, 1)  # 0 above the nose, 1 at the chin
    p[:, 0] *= 1 + (look.jaw - 1) * lower + (look.cheek - 1) * (1 - lower)
    nose = np.exp(-((p[:, 0] / 2.2) ** 2 + ((y - 1.0) / 1.6) ** 2))
    p[:, 0] *= 1 + (look.nose_w - 1) * nose
    lm = np.empty_like(p)
    lm[:, 0] = CENTRE[0] + p[:, 0] * SCALE
    lm[:, 1] = CENTRE[1] + p[:, 1] * SCALE
    lm[:, 2] = p[:, 2] * SCALE
    _open_eyes(lm, look.eye_gain)
    close_mouth(lm)
    _calm_mouth(lm, look.mouth_w)
    _full_lips(lm, look.lips_full)
    return lm


def _open_eyes(lm: np.ndarray, gain: float) -> None:
    for contour in (fr.RIGHT_EYE, fr.LEFT_EYE):
        centre = lm[contour, :2].mean(axis=0)
        radius = 1.3 * np.ptp(lm[contour, 0])
        offset = lm[:, :2] - centre
        dist = np.linalg.norm(offset, axis=1)
        g = 1.0 + (gain - 1) * np.clip(1.0 - dist / radius, 0.0, 1.0) ** 1.5
        lm[:, :2] = centre + offset * g[:, None]


def _calm_mouth(lm: np.ndarray, width: float) -> None:
    """A calm, closed mouth: narrower than the template's (which smiles), corners level."""
    cx = lm[[61, 291], 0].mean()
    cy = lm[[13, 14], 1].mean()
    half_w = np.ptp(lm[[61, 291], 0]) / 2
    dx, dy = lm[:, 0] - cx, lm[:, 1] - cy
    near = np.exp(-((dx / (half_w * 1.25)) ** 2 + (dy / (half_w * 0.7)) ** 2))
    lm[:, 0] -= dx * (1 - width) * near
    corner = np.clip(np.abs(dx) / half_w, 0, 1.2) ** 2
    lm[:, 1] += corner * half_w * 0.12 * near


def _full_lips(lm: np.ndarray, factor: float) -> None:
    """Thicker lips: points near the mouth move away from the lip seam vertically."""
    seam = lm[[13, 14], 1].mean()
    cx = lm[[61, 291], 0].mean()
    half_w = np.ptp(lm[[61, 291], 0]) / 2
    dy = lm[:, 1] - seam
    near = np.clip(1 - np.abs(lm[:, 0] - cx) / (half_w * 1.3), 0, 1)
    fade = np.exp(-((dy / (half_w * 0.45)) ** 2))
    lm[:, 1] += dy * (factor - 1) * near * fade * np.where(dy < 0, 1.6, 1.0)


def mesh_normals(lm: np.ndarray) -> np.ndarray:
    """Vertex normals towards the viewer (x right, y down, z towards the viewer)."""
    p = lm * [1.0, 1.0, -1.0]
    tri = p[TRIANGLES]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n *= np.where(n[:, 2:3] < 0, -1.0, 1.0)
    normals = np.zeros_like(p)
    for k in range(3):
        np.add.at(normals, TRIANGLES[:, k], n)
    return normals / np.linalg.norm(normals, axis=1, keepdims=True).clip(1e-9)


def rasterise(lm: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel barycentric interpolation of per-vertex ``values`` (468, C) over the mesh;
    returns the (H, W, C) image and the coverage mask."""
    xy = lm[:, :2]
    ids = np.full((pp.H, pp.W), -1, np.int32)
    for k, t in enumerate(TRIANGLES):
        cv2.fillConvexPoly(ids, pp.pts(xy[t]), k, cv2.LINE_8, pp.SHIFT)
    ys, xs = np.nonzero(ids >= 0)
    t = TRIANGLES[ids[ys, xs]]
    a, b, c = xy[t[:, 0]], xy[t[:, 1]], xy[t[:, 2]]
    v0, v1 = b - a, c - a
    v2 = np.stack([xs, ys], axis=1) - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    den = np.where(np.abs(den) < 1e-9, 1e-9, den)
    v = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
    w = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
    u = 1 - v - w
    # Thin triangles extrapolate wildly at their rasterised edges: clamp to the triangle.
    bary = np.clip(np.stack([u, v, w], axis=1), 0, 1)
    bary /= bary.sum(axis=1, keepdims=True).clip(1e-6)
    u, v, w = bary[:, 0], bary[:, 1], bary[:, 2]
    out = np.zeros((pp.H, pp.W, values.shape[1]), np.float32)
    out[ys, xs] = (
        u[:, None] * values[t[:, 0]] + v[:, None] * values[t[:, 1]] + w[:, None] * values[t[:, 2]]
    )
    cover = np.zeros((pp.H, pp.W), np.float32)
    cover[ys, xs] = 1
    return out, cover


def head_shape(lm: np.ndarray) -> dict[str, np.ndarray]:
    """Masks of the head's parts: face (mesh hull), cranium, ears, the whole head."""
    xy = lm[:, :2]
    face = pp.mask_poly([cv2.convexHull(xy.astype(np.float32))[:, 0]])
    cx = xy[10, 0]
    half_w = np.ptp(xy[[234, 454], 0]) / 2
    top = xy[10, 1]
    cranium = pp.mask_ellipse((cx, top + 0.62 * half_w), (half_w * 1.02, half_w * 1.2))
    cranium[int(xy[1, 1]) :] = 0
    ears = np.zeros_like(face)
    for side in (234, 454):
        s = np.sign(xy[side, 0] - cx)
        ex, ey = xy[side, 0] - s * 0.06 * half_w, (xy[side, 1] + xy[1, 1]) / 2
        ears = np.maximum(
            ears,
            pp.mask_ellipse((ex + s * 0.1 * half_w, ey), (0.17 * half_w, 0.36 * half_w), -s * 8),
        )
    whole = np.maximum(np.maximum(face, cranium), ears)
    return {"face": face, "cranium": cranium, "ears": ears, "whole": whole}


def skin_normals(lm: np.ndarray, parts: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel normals of the whole head (mesh inside the face, domes elsewhere) and the
    mesh coverage."""
    n_mesh, cover = rasterise(lm, mesh_normals(lm))
    # Close the hairline gaps between rasterised triangles with their neighbours' normals.
    hull = parts["face"] > 0.5
    filled = cv2.blur(n_mesh, (5, 5)) / np.maximum(cv2.blur(cover, (5, 5)), 1e-6)[..., None]
    gaps = hull & (cover == 0) & (cv2.blur(cover, (5, 5)) > 0)
    n_mesh[gaps] = filled[gaps]
    cover = np.where(gaps, 1.0, cover).astype(np.float32)
    half_w = np.ptp(lm[[234, 454], 0]) / 2
    head_wo_ears = np.maximum(parts["face"], parts["cranium"])
    n_dome = pp.dome_normals(head_wo_ears, half_w * 0.9)
    n_ear = pp.dome_normals(parts["ears"], half_w * 0.12, flat=0.3)
    ears_only = parts["ears"] * (1 - head_wo_ears)
    n_dome = n_dome * (1 - ears_only[..., None]) + n_ear * ears_only[..., None]
    inner = cv2.erode((cover > 0).astype(np.uint8), np.ones((9, 9), np.uint8))
    w = cv2.GaussianBlur(inner.astype(np.float32), (0, 0), 4)[..., None] * cover[..., None]
    n = w * n_mesh + (1 - w) * n_dome
    n /= np.linalg.norm(n, axis=2, keepdims=True).clip(1e-6)
    return n, cover


def skin_albedo(lm: np.ndarray, look: Look) -> np.ndarray:
    """Skin colour with rosier cheeks, nose and ears, slightly darker eye sockets."""
    alb = np.empty((pp.H, pp.W, 3), np.float32)
    alb[:] = look.skin
    xy = lm[:, :2]
    rosy = np.zeros((pp.H, pp.W), np.float32)
    r = np.ptp(xy[[234, 454], 0])
    for i in (205, 425):
        cv2.circle(rosy, tuple(int(v) for v in xy[i]), int(r * 0.11), look.blush, -1)
    cv2.circle(rosy, tuple(int(v) for v in xy[1]), int(r * 0.05), 0.35 * look.blush, -1)
    rosy = cv2.GaussianBlur(rosy, (0, 0), r * 0.06)[..., None]
    alb += rosy * np.array([-18, -26, 8], np.float32)
    socket = np.zeros((pp.H, pp.W), np.float32)
    for contour in (fr.RIGHT_EYE, fr.LEFT_EYE):
        c = xy[contour].mean(axis=0)
        cv2.ellipse(
            socket, (int(c[0]), int(c[1])), (int(r * 0.13), int(r * 0.08)), 0, 0, 360, 1.0, -1
        )
    socket = cv2.GaussianBlur(socket, (0, 0), r * 0.04)[..., None]
    alb *= 1 - 0.10 * socket
    alb += socket * np.array([6, -2, -4], np.float32)
    return alb


def paint_head(lm: np.ndarray, look: Look, hairline_shadow: np.ndarray) -> np.ndarray:
    """The head layer (BGRA): skin, ears, eyes, brows, nose, lips; no hair."""
    parts = head_shape(lm)
    normals, _ = skin_normals(lm, parts)
    colour = pp.shade(
        normals,
        skin_albedo(lm, look),
        spec=0.07,
        gloss=14,
        wrap=0.3,
        ambient=0.28,
        rim=0.18,
        warm_shadow=(-6, 4, 22),
    )
    _ear_detail(colour, lm, parts)
    # Thin triangles at the nose's wings leave single dark pixels: a 3x3 median removes them.
    colour = cv2.medianBlur(colour.astype(np.float32), 3)
    colour *= 1 - 0.45 * hairline_shadow[..., None]
    for contour in (fr.RIGHT_EYE, fr.LEFT_EYE):
        _eye(colour, lm, contour, look)
    _brows(colour, lm, look)
    _nostrils(colour, lm)
    _lips(colour, lm, look, normals)
    colour += pp.grain(11, 1.6)
    alpha = cv2.GaussianBlur(parts["whole"], (0, 0), 0.6)
    return pp.rgba(colour, alpha)


def _ear_detail(colour: np.ndarray, lm: np.ndarray, parts: dict) -> None:
    xy = lm[:, :2]
    half_w = np.ptp(xy[[234, 454], 0]) / 2
    inner = np.zeros((pp.H, pp.W), np.float32)
    for side in (234, 454):
        s = np.sign(xy[side, 0] - xy[10, 0])
        c = (xy[side, 0] + s * 0.1 * half_w, (xy[side, 1] + xy[1, 1]) / 2 + 0.04 * half_w)
        inner = np.maximum(inner, pp.mask_ellipse(c, (0.07 * half_w, 0.2 * half_w), -s * 8))
    inner = cv2.GaussianBlur(inner, (0, 0), 3) * parts["ears"] * (1 - parts["face"])
    colour *= 1 - 0.35 * inner[..., None]
    colour += inner[..., None] * np.array([-4, -4, 14], np.float32)


def _eye(colour: np.ndarray, lm: np.ndarray, contour: np.ndarray, look: Look) -> None:
    pts = lm[contour, :2]
    width = np.linalg.norm(pts[0] - pts[8])
    hole = pp.mask_poly([pts])
    centre = np.array([pts[:, 0].mean(), pts[:, 1].mean() + 0.02 * width])
    yy, xx = np.mgrid[0 : pp.H, 0 : pp.W].astype(np.float32)
    # Sclera: off-white, shaded like a ball, shadowed by the upper lid.
    d = np.hypot(xx - centre[0], (yy - centre[1]) * 1.6) / (width * 0.6)
    sclera = (
        np.array([222, 228, 234], np.float32)[None, None]
        * (1 - 0.28 * d.clip(0, 1) ** 2)[..., None]
    )
    upper = np.interp(xx, np.sort(pts[:9, 0]), pts[:9, 1][np.argsort(pts[:9, 0])])
    lid = np.clip(1 - (yy - upper) / (0.22 * width), 0, 1)
    eye = sclera * (1 - 0.35 * lid[..., None])
    # Iris: radial gradient, darker limbal ring, fibres, pupil.
    r_iris = 0.28 * width
    r = np.hypot(xx - centre[0], yy - centre[1]) / r_iris
    ang = np.arctan2(yy - centre[1], xx - centre[0])
    fibres = 0.5 + 0.5 * np.sin(ang * 37 + np.sin(ang * 11) * 2)
    iris_col = np.asarray(look.iris, np.float32)
    tone = 0.65 + 0.55 * r.clip(0, 1) * (0.7 + 0.3 * fibres)
    tone *= 1 - 0.55 * np.clip((r - 0.8) / 0.2, 0, 1)  # limbal ring
    tone *= 1 + 0.25 * np.clip((yy - centre[1]) / r_iris, 0, 1)  # lit from below the lid
    iris = iris_col[None, None] * tone[..., None]
    iris_a = np.clip((1.0 - r) * r_iris, 0, 1)
    iris *= 1 - 0.5 * lid[..., None]
    pp.over(eye, iris, iris_a)
    pupil_a = np.clip((0.42 - r) * r_iris, 0, 1)
    pp.over(eye, (16, 14, 14), pupil_a)
    # Catch-lights: the key softbox (upper left) and a small fill.
    for dx, dy, rad, strength in ((-0.38, -0.38, 0.22, 1.0), (0.42, 0.30, 0.09, 0.6)):
        c = centre + np.array([dx, dy]) * r_iris
        glint = np.clip((rad * r_iris - np.hypot(xx - c[0], yy - c[1])) * 1.2, 0, 1) * strength
        pp.over(eye, (252, 252, 255), glint)
    pp.over(colour, eye, hole)
    # Lash line along the upper lid, a softer line along the lower, a crease above.
    lash = np.zeros((pp.H, pp.W), np.float32)
    up = pts[:9].copy()
    up[0] += [-0.06 * width * np.sign(pts[8, 0] - pts[0, 0]), -0.03 * width]
    cv2.polylines(lash, [pp.pts(up)], False, 1.0, max(2, int(width * 0.045)), cv2.LINE_AA, pp.SHIFT)
    lash = cv2.GaussianBlur(lash, (0, 0), 0.8)
    pp.over(colour, (22, 22, 28), lash * 0.95)
    low = np.zeros_like(lash)
    cv2.polylines(
        low, [pp.pts(np.vstack([pts[8:], pts[:1]]))], False, 1.0, 1, cv2.LINE_AA, pp.SHIFT
    )
    pp.over(colour, (60, 60, 80), cv2.GaussianBlur(low, (0, 0), 0.7) * 0.5)
    crease = np.zeros_like(lash)
    cv2.polylines(
        crease, [pp.pts(pts[1:8] - [0, 0.19 * width])], False, 1.0, 2, cv2.LINE_AA, pp.SHIFT
    )
    colour *= 1 - 0.22 * cv2.GaussianBlur(crease, (0, 0), 2.2)[..., None]


def _brows(colour: np.ndarray, lm: np.ndarray, look: Look) -> None:
    xy = lm[:, :2]
    rng = np.random.default_rng(5)
    strokes = np.zeros((pp.H, pp.W), np.float32)
    for upper, lower in (
        (topology.RIGHT_BROW_UPPER, topology.RIGHT_BROW_LOWER),
        (topology.LEFT_BROW_UPPER, topology.LEFT_BROW_LOWER),
    ):
        u, lo = xy[list(upper)], xy[list(lower)]
        for _ in range(260):
            k = rng.uniform(0, len(u) - 1.001)
            i, f = int(k), k - int(k)
            a = u[i] * (1 - f) + u[i + 1] * f
            b = lo[i] * (1 - f) + lo[i + 1] * f
            thick = 1 - 0.55 * (k / (len(u) - 1)) ** 2 if False else 1.0
            t = rng.uniform(0.15, 0.95)
            p0 = a * t + b * (1 - t) + [0, -look.brow_lift]
            direction = u[min(i + 1, len(u) - 1)] - u[max(i - 1, 0)]
            direction = -direction / np.linalg.norm(direction)
            p1 = p0 + direction * rng.uniform(6, 12) * thick + [0, -rng.uniform(1, 4)]
            cv2.line(
                strokes,
                tuple(int(v) for v in pp.pts(p0)),
                tuple(int(v) for v in pp.pts(p1)),
                1.0,
                1,
                cv2.LINE_AA,
                pp.SHIFT,
            )
    body = pp.mask_poly(
        [
            np.vstack(
                [
                    xy[list(topology.RIGHT_BROW_UPPER)] - [0, 2.5],
                    xy[list(topology.RIGHT_BROW_LOWER)][::-1],
                ]
            )
            - [0, look.brow_lift],
            np.vstack(
                [
                    xy[list(topology.LEFT_BROW_UPPER)] - [0, 2.5],
                    xy[list(topology.LEFT_BROW_LOWER)][::-1],
                ]
            )
            - [0, look.brow_lift],
        ],
        blur=3.0,
    )
    a = np.clip(0.7 * body + 0.5 * cv2.GaussianBlur(strokes, (0, 0), 0.7), 0, 0.92)
    pp.over(colour, colour * 0.2 + np.asarray(look.brow, np.float32) * 0.8, a)


def _nostrils(colour: np.ndarray, lm: np.ndarray) -> None:
    xy = lm[:, :2]
    m = np.zeros((pp.H, pp.W), np.float32)
    for a in (98, 327):
        p = xy[a] * 0.55 + xy[2] * 0.45 + [0, -2]
        w = np.ptp(xy[[98, 327], 0]) * 0.085
        cv2.ellipse(
            m,
            tuple(int(v) for v in pp.pts(p)),
            (int(w * 16), int(w * 0.5 * 16)),
            0,
            0,
            360,
            1.0,
            -1,
            cv2.LINE_AA,
            pp.SHIFT,
        )
    m = cv2.GaussianBlur(m, (0, 0), 2.0)
    colour *= 1 - 0.2 * m[..., None]


def _lips(colour: np.ndarray, lm: np.ndarray, look: Look, normals: np.ndarray) -> None:
    xy = lm[:, :2]
    outer, inner = xy[fr.LIPS_OUTER], xy[fr.LIPS_INNER]
    lips = pp.mask_poly([outer], blur=1.6)
    lower = pp.mask_poly([np.vstack([outer[10:], outer[:1], inner[10:][::-1], inner[:1]])], blur=2)
    lit = pp.shade(normals, look.lip, spec=0.0, wrap=0.5, ambient=0.38, rim=0.0)
    lit *= (1 + 0.06 * lower)[..., None]
    pp.over(colour, lit, lips * 0.8)
    # Gloss on the lower lip, a dark seam, soft corners.
    c = (outer[15] * 0.6 + inner[15] * 0.4) + [-0.08 * np.ptp(outer[:, 0]), 0]
    gloss = pp.mask_ellipse(c, (np.ptp(outer[:, 0]) * 0.12, 2.2), blur=2.5)
    colour += 45 * (gloss * lips)[..., None]
    seam = np.zeros((pp.H, pp.W), np.float32)
    cv2.polylines(seam, [pp.pts(inner[:11])], False, 1.0, 1, cv2.LINE_AA, pp.SHIFT)
    pp.over(
        colour, np.asarray(look.lip, np.float32) * 0.4, cv2.GaussianBlur(seam, (0, 0), 1.0) * 0.8
    )
    corners = np.zeros_like(seam)
    for i in (61, 291):
        cv2.circle(corners, tuple(int(v) for v in xy[i]), 3, 1.0, -1)
    colour *= 1 - 0.3 * cv2.GaussianBlur(corners, (0, 0), 2.5)[..., None]


def paint_mouth(lm: np.ndarray) -> np.ndarray:
    """The mouth interior layer (BGRA): throat, upper and lower teeth, tongue, drawn at the
    mouth over the area the lips uncover when the jaw opens."""
    xy = lm[:, :2]
    left, right = xy[61], xy[291]
    cx = (left[0] + right[0]) / 2
    seam = xy[[13, 14], 1].mean()
    w = right[0] - left[0]
    area = pp.mask_ellipse((cx, seam + 0.22 * w), (0.56 * w, 0.52 * w))
    yy, xx = np.mgrid[0 : pp.H, 0 : pp.W].astype(np.float32)
    depth = np.clip(1 - np.hypot((xx - cx) / (0.5 * w), (yy - seam - 0.2 * w) / (0.4 * w)), 0, 1)
    colour = np.empty((pp.H, pp.W, 3), np.float32)
    colour[:] = (34, 30, 70)
    colour *= (1 - 0.75 * depth)[..., None]
    tongue = pp.mask_ellipse((cx, seam + 0.5 * w), (0.34 * w, 0.22 * w), blur=2)
    pp.over(
        colour, np.array([96, 98, 186], np.float32) * (0.55 + 0.45 * (1 - depth[..., None])), tongue
    )
    for top in (True, False):
        y0 = seam - 0.02 * w if top else seam + 0.30 * w
        band = _teeth(cx, y0, w, top)
        shade = 0.82 + 0.18 * np.clip(1 - np.abs(xx - cx) / (0.45 * w), 0, 1)
        teeth = np.array([226, 236, 242], np.float32) * shade[..., None]
        teeth *= 1 - (0.0 if top else 0.18)
        pp.over(colour, teeth, band)
    return pp.rgba(colour, area)


def _teeth(cx: float, y0: float, w: float, top: bool) -> np.ndarray:
    m = np.zeros((pp.H, pp.W), np.float32)
    widths = [0.11, 0.085, 0.075, 0.065]
    h = 0.16 * w if top else 0.12 * w
    for side in (-1, 1):
        x = cx
        for k, tw in enumerate(widths):
            x1 = x + side * tw * w
            hh = h * (1 - 0.08 * k)
            ys = (y0, y0 + hh) if top else (y0 - hh, y0)
            box = np.array([[x, ys[0]], [x1, ys[0]], [x1, ys[1]], [x, ys[1]]])
            tooth = pp.mask_poly([box + np.array([side * 0.5, 0])])
            m = np.maximum(m, tooth * 0.98)
            x = x1 + side * 0.014 * w
    return cv2.GaussianBlur(m, (0, 0), 0.8)
