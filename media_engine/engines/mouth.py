"""The inside of an open mouth, painted where the lips part.

A dark cavity shaded towards the throat, the upper teeth as a band under the upper lip and
the tongue at the bottom, all clipped to the inner-lip contour and anti-aliased at the edge.
Drawn only in the mouth's bounding box: a few hundred microseconds at most.
"""

import cv2
import numpy as np

from media_engine.engines import face_regions as fr

CAVITY = np.array([38, 30, 62], np.float32)  # BGR, dark red-brown
THROAT = np.array([14, 10, 24], np.float32)
TEETH = np.array([196, 208, 216], np.float32)
TONGUE = np.array([104, 98, 176], np.float32)
# Below this opening (inner-lip gap over mouth width) the mouth counts as closed.
MIN_OPENING = 0.04


def opening(points: np.ndarray) -> float:
    """Inner-lip gap over mouth width."""
    gap = np.linalg.norm(points[fr.MOUTH_BOTTOM] - points[fr.MOUTH_TOP])
    width = np.linalg.norm(points[fr.MOUTH_LEFT] - points[fr.MOUTH_RIGHT])
    return float(gap / width) if width > 1e-6 else 0.0


def parabola(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The least-squares parabola through (x, y), at ``x`` (``np.polyfit(x, y, 2)`` then
    ``np.polyval``, without their checks: a 3×3 solve on centred x)."""
    xc = x - x.mean()
    v = np.stack([xc * xc, xc, np.ones_like(xc)], axis=1)
    return v @ np.linalg.solve(v.T @ v, v.T @ y)


def paint_mouth_interior(frame: np.ndarray, points: np.ndarray) -> None:
    """Fill the inner-lip polygon of ``points`` (468×2, frame pixels) in place."""
    open_ratio = opening(points)
    if open_ratio < MIN_OPENING:
        return
    contour = points[fr.LIPS_INNER].astype(np.float64)
    h, w = frame.shape[:2]
    x0 = max(0, int(np.floor(contour[:, 0].min())) - 1)
    y0 = max(0, int(np.floor(contour[:, 1].min())) - 1)
    x1 = min(w, int(np.ceil(contour[:, 0].max())) + 2)
    y1 = min(h, int(np.ceil(contour[:, 1].max())) + 2)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    bw, bh = x1 - x0, y1 - y0
    local = np.round((contour - [x0, y0]) * 16).astype(np.int32)
    mask = np.zeros((bh, bw), np.uint8)
    cv2.fillPoly(mask, [local], 255, cv2.LINE_AA, 4)

    top = points[fr.MOUTH_TOP] - [x0, y0]
    bottom = points[fr.MOUTH_BOTTOM] - [x0, y0]
    width = float(np.linalg.norm(points[fr.MOUTH_LEFT] - points[fr.MOUTH_RIGHT]))
    gap = float(np.linalg.norm(bottom - top))
    # Depth shading: darker towards the middle of the opening.
    ys = np.arange(bh, dtype=np.float32)[:, None]
    xs = np.arange(bw, dtype=np.float32)[None, :]
    centre = (top + bottom) / 2
    across = np.abs(xs - np.float32(centre[0])) / np.float32(max(width / 2, 1))  # (1, bw)
    down = (ys - np.float32(centre[1])) / np.float32(max(gap, 1))  # (bh, 1)
    depth = np.clip(1.0 - np.sqrt(across**2 + down**2), 0.0, 1.0)

    layer = np.zeros((bh, bw), np.uint8)
    # Upper teeth: a band hanging from the upper lip (a third of the gap at most).
    teeth_h = min(0.3 * gap, 0.1 * width)
    # Hanging from a smooth line through the upper inner lip (drawn lips can be jagged).
    top_half = contour[: len(contour) // 2 + 1]
    if np.ptp(top_half[:, 0]) > 2:
        top_half = np.column_stack([top_half[:, 0], parabola(top_half[:, 0], top_half[:, 1])])
    upper = np.round((top_half - [x0, y0]) * 16).astype(np.int32)
    lowered = upper[::-1] + np.array([0, int(teeth_h * 16)], np.int32)
    band = np.vstack([upper, lowered])
    cv2.fillPoly(layer, [band], 255, cv2.LINE_AA, 4)
    # Teeth fade out towards the corners (the cheeks' shadow).
    taper = np.clip(1.5 - 1.6 * across, 0, 1)
    teeth = layer * (np.float32(0.92 / 255) * taper)
    shade = 0.82 + 0.18 * (1 - across).clip(0, 1)
    # Tongue: an ellipse resting on the lower lip.
    layer[:] = 0
    tongue_c = (round(float(bottom[0]) * 16), round(float(bottom[1] - 0.12 * gap) * 16))
    axes = (int(0.3 * width * 16), int(max(0.28 * gap, 1) * 16))
    cv2.ellipse(layer, tongue_c, axes, 0, 180, 360, 255, -1, cv2.LINE_AA, 4)
    tongue = layer * np.float32(min(1.0, 4 * open_ratio) * 0.85 / 255)
    # The interior is a per-pixel mix of four colours (cavity, throat, teeth, tongue over
    # one another): its weights as planes, the colours in one product.
    alpha = mask * np.float32(1 / 255)
    keep = (1 - tongue) * alpha
    weights = np.empty((bh, bw, 5), np.float32)
    weights[..., 1] = (1 - teeth) * keep
    weights[..., 0] = weights[..., 1] * (1 - depth)
    weights[..., 1] *= depth
    weights[..., 2] = teeth * shade * keep
    weights[..., 3] = tongue * alpha
    weights[..., 4] = 1 - alpha
    roi = frame[y0:y1, x0:x1]
    mixed = weights[..., :4] @ _COLOURS + roi * weights[..., 4:]
    roi[:] = (mixed + 0.5).astype(np.uint8)


_COLOURS = np.stack([CAVITY, THROAT, TEETH, TONGUE])
