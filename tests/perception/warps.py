"""Image warps that change a real face in a known way (close an eye, open the mouth, turn the
head), for checking that the measures move the right way.

``warp_points`` moves chosen landmarks of an image to new places and carries the pixels
around them along: a dense backward map interpolated (linearly, over a Delaunay
triangulation) from the moved points, with a ring of fixed points around the face so that the
rest of the picture stays where it is.
"""

import cv2
import numpy as np
from scipy.interpolate import griddata


def warp_points(image: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The image with the pixels at ``src`` (n, 2) moved to ``dst`` (n, 2)."""
    h, w = image.shape[:2]
    centre = src.mean(0)
    radius = np.linalg.norm(src - centre, axis=1).max() * 1.6
    angles = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    ring = centre + radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], np.float64)
    anchors = np.concatenate([ring, corners])
    points = np.concatenate([dst, anchors])
    shifts = np.concatenate([src - dst, np.zeros_like(anchors)])
    grid_y, grid_x = np.mgrid[0:h, 0:w]
    dx = griddata(points, shifts[:, 0], (grid_x, grid_y), method="linear", fill_value=0.0)
    dy = griddata(points, shifts[:, 1], (grid_x, grid_y), method="linear", fill_value=0.0)
    map_x = (grid_x + dx).astype(np.float32)
    map_y = (grid_y + dy).astype(np.float32)
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def keep(landmarks: np.ndarray, moved: dict[int, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Source and target points: every landmark stays, except those in ``moved``."""
    src = landmarks[:, :2].astype(np.float64)
    dst = src.copy()
    for index, target in moved.items():
        dst[index] = target
    return src, dst


def close_eye(
    image: np.ndarray, landmarks: np.ndarray, contour: tuple[int, ...], skin: float = 0.3
) -> np.ndarray:
    """Close one eye: the skin above it is pulled down over the eye onto the lower lid (a
    local vertical squash; ``contour`` is the eye's outline from the outer corner along the
    upper lid, as in ``topology.RIGHT_EYE``)."""
    pts = landmarks[:, :2].astype(np.float64)
    half = len(contour) // 2
    upper = pts[list(contour[: half + 1])]
    lower = pts[[contour[0], *contour[half:][::-1]]]
    x0, x1 = min(upper[:, 0].min(), lower[:, 0].min()), max(upper[:, 0].max(), lower[:, 0].max())
    upper, lower = upper[np.argsort(upper[:, 0])], lower[np.argsort(lower[:, 0])]
    height = float((np.interp(upper[:, 0], lower[:, 0], lower[:, 1]) - upper[:, 1]).max())
    reach = 2.2 * height  # how far above the lower lid the squash reaches
    h, w = image.shape[:2]
    grid_y, grid_x = np.mgrid[0:h, 0:w].astype(np.float64)
    xs = np.clip(grid_x[0], x0, x1)
    lid_low = np.interp(xs, lower[:, 0], lower[:, 1])
    lid_up = np.interp(xs, upper[:, 0], upper[:, 1])
    opening = np.clip(lid_low - lid_up, 0, None)
    # 1 across the eye, falling to 0 at the corners and beyond them.
    margin = (x1 - x0) * 0.15
    weight = np.clip(np.minimum(grid_x[0] - x0 + margin, x1 + margin - grid_x[0]) / (2 * margin),
                     0, 1)  # fmt: skip
    above = lid_low[None, :] - grid_y  # distance above the lower lid
    inside = (above >= 0) & (above <= reach)
    start = opening[None, :] * (1 + skin)
    squashed = start + above * (reach - start) / reach
    source_above = np.where(inside, above + weight[None, :] * (squashed - above), above)
    map_y = (lid_low[None, :] - source_above).astype(np.float32)
    map_x = grid_x.astype(np.float32)
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def open_mouth(image: np.ndarray, landmarks: np.ndarray, amount: float) -> np.ndarray:
    """Drop the jaw by ``amount`` times the mouth's width: every point below the upper lip
    moves down (the lower lip and chin fully, the jaw line towards the ears half as much),
    and the mouth's dark inside shows between the parted lips."""
    from media_engine.perception import topology as t

    pts = landmarks[:, :2].astype(np.float64)
    width = np.linalg.norm(pts[61] - pts[291])
    drop = amount * width
    upper_y, lower_y = pts[13, 1], pts[14, 1]
    centre_x = (pts[61, 0] + pts[291, 0]) / 2
    half_mouth, half_face = width / 2, np.linalg.norm(pts[234] - pts[454]) / 2
    vertical = np.clip((pts[:, 1] - upper_y) / max(lower_y - upper_y, 1.0), 0, 1)
    side = np.clip((np.abs(pts[:, 0] - centre_x) - half_mouth) / (half_face - half_mouth), 0, 1)
    weight = vertical * (1 - 0.5 * side)
    weight[list(t.LIPS_INNER[: t.LIPS_INNER.index(308) + 1])] = 0.0  # the upper lip stays
    weight[list(t.LIPS_OUTER[: t.LIPS_OUTER.index(291) + 1])] = 0.0
    dst = pts + np.stack([np.zeros(len(pts)), drop * weight], axis=1)
    out = warp_points(image, pts, dst)
    cavity = np.zeros(out.shape[:2], np.float32)
    cv2.fillPoly(cavity, [np.round(dst[list(t.LIPS_INNER)]).astype(np.int32)], 1.0)
    cavity = cv2.GaussianBlur(cavity, (5, 5), 0)[:, :, None]
    dark = np.array([30, 25, 60], np.float32)  # BGR: a dark red mouth
    return (out * (1 - cavity) + dark * cavity).astype(np.uint8)


def turn_head(image: np.ndarray, landmarks: np.ndarray, yaw_deg: float = 0.0,
              pitch_deg: float = 0.0) -> np.ndarray:  # fmt: skip
    """Turn the face (each landmark rotated about the face's centre, using its depth) by
    ``yaw_deg`` (positive: nose towards the image's right) and ``pitch_deg`` (positive: up)."""
    pts = landmarks.astype(np.float64)
    centre = pts.mean(0)
    rel = pts - centre
    yaw, pitch = np.radians(yaw_deg), np.radians(pitch_deg)
    # Positive yaw moves the near points (negative z, e.g. the nose) right; positive pitch
    # moves them up.
    x = rel[:, 0] * np.cos(yaw) - rel[:, 2] * np.sin(yaw)
    z = rel[:, 0] * np.sin(yaw) + rel[:, 2] * np.cos(yaw)
    y = rel[:, 1] * np.cos(pitch) + z * np.sin(pitch)
    dst = np.stack([x, y], axis=1) + centre[:2]
    return warp_points(image, pts[:, :2], dst)
