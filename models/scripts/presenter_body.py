"""The presenters' hair, neck, business clothing and studio backdrop (used by
make_presenters.py). Shapes are placed relative to the face's landmarks."""

from dataclasses import dataclass

import cv2
import numpy as np
import presenter_paint as pp


@dataclass(frozen=True)
class Frame:
    """Where the body goes, from the face: centre, chin, jaw, collar line."""

    cx: float
    top: float  # top of the face mesh (forehead)
    half_w: float  # half the face's width
    chin: float
    jaw_y: float
    collar: float  # the front of the collar, under the chin


def frame_of(lm: np.ndarray) -> Frame:
    xy = lm[:, :2]
    chin = float(xy[152, 1])
    return Frame(
        cx=float(xy[10, 0]),
        top=float(xy[10, 1]),
        half_w=float(np.ptp(xy[[234, 454], 0]) / 2),
        chin=chin,
        jaw_y=float(xy[[172, 397], 1].mean()),
        collar=chin + 58,
    )


# --- backdrop -----------------------------------------------------------------------------


def paint_background(tint: tuple, seed: int) -> np.ndarray:
    """A calm studio backdrop: a lit gradient, a soft vignette and out-of-focus panels."""
    yy, xx = np.mgrid[0 : pp.H, 0 : pp.W].astype(np.float32)
    base = np.asarray(tint, np.float32)
    glow = np.exp(-(((xx - 520) / 620) ** 2 + ((yy - 260) / 420) ** 2))
    img = base[None, None] * (0.62 + 0.5 * glow)[..., None]
    # Blurred panels of a counter hall behind: vertical light strips and a soft band.
    panels = np.zeros((pp.H, pp.W), np.float32)
    for x in (150, 330, 950, 1130):
        cv2.rectangle(panels, (x, 60), (x + 70, 600), 1.0, -1)
    cv2.rectangle(panels, (0, 470), (pp.W, 500), 0.6, -1)
    panels = cv2.GaussianBlur(panels, (0, 0), 28)
    img *= (1 + 0.14 * panels)[..., None]
    vignette = np.hypot((xx - 640) / 800, (yy - 360) / 520)
    img *= (1 - 0.35 * vignette.clip(0, 1) ** 2)[..., None]
    img += pp.grain(seed, 0.7)
    return np.clip(img, 0, 255).astype(np.uint8)


# --- neck ---------------------------------------------------------------------------------


def neck_shape(f: Frame, width: float) -> np.ndarray:
    """The neck from under the jaw (hidden by the head) to well under the collar."""
    nw = f.half_w * width
    top = f.jaw_y - 40
    bottom = f.collar + 70
    ctrl = [
        (f.cx - nw, top),
        (f.cx + nw, top),
        (f.cx + nw * 1.02, f.chin),
        (f.cx + nw * 1.25, f.collar + 10),
        (f.cx + nw * 1.9, bottom),
        (f.cx - nw * 1.9, bottom),
        (f.cx - nw * 1.25, f.collar + 10),
        (f.cx - nw * 1.02, f.chin),
    ]
    return pp.mask_poly([pp.smooth_curve(np.array(ctrl), 10)])


def paint_neck(lm: np.ndarray, f: Frame, skin: tuple, width: float) -> np.ndarray:
    mask = neck_shape(f, width)
    xx = np.arange(pp.W, dtype=np.float32)[None, :].repeat(pp.H, 0)
    r = f.half_w * width * 1.15
    nx = np.clip((xx - f.cx) / r, -0.97, 0.97)
    normals = np.dstack([nx, np.full_like(nx, 0.12), np.sqrt(1 - nx**2)])
    normals /= np.linalg.norm(normals, axis=2, keepdims=True)
    colour = pp.shade(
        normals,
        np.asarray(skin, np.float32) * 0.93,
        spec=0.03,
        wrap=0.45,
        ambient=0.32,
        rim=0.15,
        warm_shadow=(-6, 4, 26),
    )
    # The jaw's shadow on the neck, strongest just under the chin.
    jaw = lm[[58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288], :2]
    shadow = pp.mask_poly([np.vstack([jaw + np.array([0, 20]), jaw[::-1] - np.array([0, 200])])])
    shadow = cv2.GaussianBlur(shadow, (0, 0), 10)
    colour *= (1 - 0.38 * shadow)[..., None]
    colour += pp.grain(21, 1.4)
    return pp.rgba(colour, cv2.GaussianBlur(mask, (0, 0), 0.6))


# --- clothing -----------------------------------------------------------------------------


def shoulders(f: Frame, width: float) -> np.ndarray:
    """The outline of shoulders and upper arms, down off the bottom of the canvas."""
    y0 = f.collar - 10
    k = width / 2.8
    ctrl = [
        (f.cx - 0.75 * f.half_w, y0),
        (f.cx + 0.75 * f.half_w, y0),
        (f.cx + 1.35 * f.half_w * k, y0 + 30),
        (f.cx + 2.0 * f.half_w * k, y0 + 58),
        (f.cx + 2.5 * f.half_w * k, y0 + 100),
        (f.cx + 2.75 * f.half_w * k, pp.H + 60),
        (f.cx - 2.75 * f.half_w * k, pp.H + 60),
        (f.cx - 2.5 * f.half_w * k, y0 + 100),
        (f.cx - 2.0 * f.half_w * k, y0 + 58),
        (f.cx - 1.35 * f.half_w * k, y0 + 30),
    ]
    return pp.mask_poly([pp.smooth_curve(np.array(ctrl), 12)])


def fabric(
    mask: np.ndarray, albedo, radius: float, seed: int, *, spec: float = 0.05, weave: float = 3.0
) -> np.ndarray:
    """Lit colour of a piece of cloth: a soft dome plus a fine weave."""
    normals = pp.dome_normals(mask, radius, flat=0.2)
    colour = pp.shade(normals, albedo, spec=spec, gloss=10, wrap=0.3, ambient=0.36, rim=0.2)
    colour += pp.grain(seed, weave)
    return colour


def edge_shadow(mask: np.ndarray, offset: tuple, blur: float, strength: float) -> np.ndarray:
    """How much a shape shades what lies under it (a soft drop shadow), 0-1."""
    m = np.roll(mask, (int(offset[1]), int(offset[0])), axis=(0, 1))
    return strength * cv2.GaussianBlur(m, (0, 0), blur)


def shirt_collar(f: Frame, nw: float, spread: float) -> tuple[np.ndarray, np.ndarray]:
    """The two wings of a shirt collar around the neck and the band behind it."""
    wings = []
    for s in (-1, 1):
        wing = np.array(
            [
                (f.cx + s * nw * 1.05, f.collar - 52),
                (f.cx + s * nw * 1.35, f.collar - 20),
                (f.cx + s * nw * (1.3 + spread), f.collar + 42),
                (f.cx + s * 6, f.collar + 18),
                (f.cx + s * nw * 0.55, f.collar - 6),
            ]
        )
        wings.append(pp.mask_poly([pp.smooth_curve(wing, 6)]))
    band = np.array(
        [
            (f.cx - nw * 1.05, f.collar - 55),
            (f.cx + nw * 1.05, f.collar - 55),
            (f.cx + nw * 1.32, f.collar - 10),
            (f.cx - nw * 1.32, f.collar - 10),
        ]
    )
    return np.maximum(wings[0], wings[1]), pp.mask_poly([band])


def neck_hole(f: Frame, nw: float) -> np.ndarray:
    """Where the neck shows above the front of the collar (the torso stays clear of it)."""
    hole = np.array(
        [
            (f.cx - nw * 1.04, f.jaw_y - 60),
            (f.cx + nw * 1.04, f.jaw_y - 60),
            (f.cx + nw * 1.04, f.collar - 40),
            (f.cx + nw * 0.5, f.collar - 8),
            (f.cx, f.collar + 16),
            (f.cx - nw * 0.5, f.collar - 8),
            (f.cx - nw * 1.04, f.collar - 40),
        ]
    )
    return pp.mask_poly([pp.smooth_curve(hole, 6)], blur=0.8)


def lapels(f: Frame, sw: float, depth: float) -> tuple[np.ndarray, np.ndarray]:
    """The jacket's V opening and its two lapels (notched)."""
    v_bottom = (f.cx, f.collar + depth)
    opening = np.array(
        [
            (f.cx - f.half_w * 0.62, f.collar - 30),
            (f.cx + f.half_w * 0.62, f.collar - 30),
            (f.cx + 20, v_bottom[1]),
            (f.cx - 20, v_bottom[1]),
        ]
    )
    lap = []
    for s in (-1, 1):
        shape = np.array(
            [
                (f.cx + s * f.half_w * 0.62, f.collar - 30),
                (f.cx + s * f.half_w * 0.98, f.collar + 8),
                (f.cx + s * f.half_w * 1.02, f.collar + 52),
                (f.cx + s * f.half_w * 1.22, f.collar + 70),
                (f.cx + s * 40, v_bottom[1] + 10),
                (f.cx + s * 20, v_bottom[1]),
            ]
        )
        lap.append(pp.mask_poly([shape]))
    return pp.mask_poly([opening]), np.maximum(lap[0], lap[1])
