"""Painting primitives for the synthetic presenters (used by make_presenters.py).

Everything is lit by one key light from the viewer's upper left (``LIGHT``), with a soft
fill and a cool rim light from behind, so that every layer (skin, hair, clothes) is shaded
consistently. Shapes become 3-D by a height field: a filled mask's distance to its edge,
bent into a dome, gives normals; the face uses the face mesh's own normals.
Coordinates are canvas pixels, x right, y down, z towards the viewer.
"""

import cv2
import numpy as np

W, H = 1280, 720
LIGHT = np.array([-0.45, -0.38, 0.80])
LIGHT /= np.linalg.norm(LIGHT)
VIEW = np.array([0.0, 0.0, 1.0])
SHIFT = 4  # sub-pixel bits for cv2 drawing
ONE = 1 << SHIFT


def pts(xy: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(xy, np.float64) * ONE).astype(np.int32)


def mask_poly(polys, *, blur: float = 0.0) -> np.ndarray:
    """A float mask (H, W) in [0, 1] of filled polygons (anti-aliased)."""
    m = np.zeros((H, W), np.uint8)
    cv2.fillPoly(m, [pts(p) for p in polys], 255, cv2.LINE_AA, SHIFT)
    out = m.astype(np.float32) / 255
    return cv2.GaussianBlur(out, (0, 0), blur) if blur > 0 else out


def mask_ellipse(centre, axes, angle: float = 0.0, *, blur: float = 0.0) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    c = tuple(int(v) for v in pts(centre))
    a = tuple(int(v) for v in pts(axes))
    cv2.ellipse(m, c, a, angle, 0, 360, 255, -1, cv2.LINE_AA, SHIFT)
    out = m.astype(np.float32) / 255
    return cv2.GaussianBlur(out, (0, 0), blur) if blur > 0 else out


def smooth_curve(ctrl: np.ndarray, n: int = 24, closed: bool = True) -> np.ndarray:
    """Catmull-Rom spline through control points (polygon outline for organic shapes)."""
    p = np.asarray(ctrl, np.float64)
    if closed:
        p = np.vstack([p[-1:], p, p[:2]])
    else:
        p = np.vstack([p[:1], p, p[-1:]])
    t = np.linspace(0, 1, n, endpoint=False)[:, None]
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(
            0.5
            * (
                (2 * p1)
                + (-p0 + p2) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
            )
        )
    if not closed:
        out.append(p[-2:-1])
    return np.vstack(out)


def dome_normals(mask: np.ndarray, radius: float, *, flat: float = 0.0) -> np.ndarray:
    """Normals (H, W, 3) of a pillow raised over ``mask``: the height rises over ``radius``
    pixels from the edge like a quarter circle; ``flat`` tilts it less (0 = full dome)."""
    inside = (mask > 0.5).astype(np.uint8)
    dist = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
    d = np.clip(dist / radius, 0, 1)
    height = radius * np.sqrt(1 - (1 - d) ** 2)
    height = cv2.GaussianBlur(height.astype(np.float32), (0, 0), max(radius / 8, 1.0))
    return normals_from_height(height, 1.0 - flat)


def normals_from_height(height: np.ndarray, gain: float = 1.0) -> np.ndarray:
    gy, gx = np.gradient(height)
    n = np.dstack([-gx * gain, -gy * gain, np.ones_like(height)])
    return n / np.linalg.norm(n, axis=2, keepdims=True)


def shade(
    normals: np.ndarray,
    albedo,
    *,
    spec: float = 0.15,
    gloss: float = 20.0,
    wrap: float = 0.35,
    ambient: float = 0.30,
    rim: float = 0.25,
    warm_shadow=(0.0, 0.0, 0.0),
) -> np.ndarray:
    """Lit colour (H, W, 3, BGR float 0-255) of surfaces with the given normals and albedo.

    Wrapped Lambert for the key light, a sky-like ambient (brighter facing up), a Blinn
    highlight and a rim at grazing angles; ``warm_shadow`` tints the terminator (skin's
    subsurface glow)."""
    alb = np.broadcast_to(np.asarray(albedo, np.float32), normals.shape)
    ndl = normals @ LIGHT
    diffuse = np.clip((ndl + wrap) / (1 + wrap), 0, 1)
    sky = ambient * (0.75 + 0.25 * -normals[..., 1])
    half = (LIGHT + VIEW) / np.linalg.norm(LIGHT + VIEW)
    highlight = spec * np.clip(normals @ half, 0, 1) ** gloss
    grazing = np.clip(1 - normals[..., 2], 0, 1) ** 3
    terminator = np.clip(1 - np.abs(ndl + 0.1) * 3, 0, 1)[..., None]
    colour = alb * (0.85 * diffuse + sky)[..., None]
    colour += terminator * np.asarray(warm_shadow, np.float32)
    colour += 255 * highlight[..., None]
    colour += rim * grazing[..., None] * np.array([255, 235, 215], np.float32) * 0.5
    return colour


def directional_noise(
    seed: int, angle: np.ndarray, length: int = 31, bins: int = 16, scale: float = 1.0
) -> np.ndarray:
    """Streaky noise (H, W) in about [-1, 1], streaks along ``angle`` (radians, per pixel):
    the texture of hair strands or fabric grain."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 1, (H, W)).astype(np.float32)
    if scale != 1.0:
        small = rng.normal(0, 1, (int(H / scale), int(W / scale))).astype(np.float32)
        base = cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)
    out = np.zeros((H, W), np.float32)
    idx = np.round((np.mod(angle, np.pi) / np.pi) * bins).astype(int) % bins
    for b in range(bins):
        theta = b * np.pi / bins
        k = np.zeros((length, length), np.float32)
        c = length // 2
        dx, dy = np.cos(theta) * c, np.sin(theta) * c
        cv2.line(
            k,
            (round(c - dx), round(c - dy)),
            (round(c + dx), round(c + dy)),
            1.0,
            1,
            cv2.LINE_AA,
        )
        k /= k.sum()
        streak = cv2.filter2D(base, -1, k)
        sel = idx == b
        out[sel] = streak[sel]
    return out / (out.std() + 1e-6)


def over(dst: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> None:
    """Paint ``colour`` (H, W, 3 or a BGR triple) over ``dst`` (float) with ``alpha``."""
    a = alpha[..., None]
    dst[:] = dst * (1 - a) + np.asarray(colour, np.float32) * a


def rgba(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """An 8-bit BGRA layer (alpha 0 where nothing is drawn)."""
    out = np.zeros((H, W, 4), np.uint8)
    out[..., :3] = np.clip(colour, 0, 255).astype(np.uint8)
    out[..., 3] = np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8)
    out[out[..., 3] == 0, :3] = 0
    return out


def grain(seed: int, amount: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    g = rng.normal(0, amount, (H, W)).astype(np.float32)
    return cv2.GaussianBlur(g, (0, 0), 0.7)[..., None]
