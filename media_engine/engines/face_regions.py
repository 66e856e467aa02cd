"""Which of the 468 mesh landmarks outline the parts the engines draw or mask.

The contours are perception's (``media_engine.perception.topology``) as arrays, plus what
only the engines need: lid pairs, the points that carry head motion, the five alignment
points and the triangles that close the eyes and mouth. "Left" is the visitor's (or
portrait's) own left, which appears on the image's right.
"""

import collections
import functools

import numpy as np

from media_engine.perception import topology

FACE_OVAL = np.array(topology.FACE_OVAL)
LIPS_OUTER = np.array(topology.LIPS_OUTER)
LIPS_INNER = np.array(topology.LIPS_INNER)
RIGHT_EYE = np.array(topology.RIGHT_EYE)
LEFT_EYE = np.array(topology.LEFT_EYE)
RIGHT_BROW = np.array(topology.RIGHT_BROW)
LEFT_BROW = np.array(topology.LEFT_BROW)
# Upper-lid contour points (right eye, then left) and the lower-lid points facing them.
UPPER_LIDS = np.array([246, 161, 160, 159, 158, 157, 173, 466, 388, 387, 386, 385, 384, 398])
LOWER_LIDS = np.array([7, 163, 144, 145, 153, 154, 155, 249, 390, 373, 374, 380, 381, 382])
NOSE_TIP = topology.NOSE_TIP
# Upper and lower inner-lip midpoints; mouth corners.
MOUTH_TOP, MOUTH_BOTTOM, MOUTH_RIGHT, MOUTH_LEFT = 13, 14, 78, 308
# Points that move with the head but hardly with expressions: eye corners, nose bridge,
# forehead, temples. Used to separate head motion from expression.
STABLE = np.array([33, 133, 362, 263, 168, 6, 197, 195, 5, 4, 10, 151, 9, 8, 234, 454, 127, 356])
# The five points insightface-style aligners use: eye centres, nose tip, mouth corners.
RIGHT_EYE_CENTRE = (33, 133)
LEFT_EYE_CENTRE = (362, 263)


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """(5, 2): the image-left eye, image-right eye, nose tip, image-left and right mouth corner."""
    xy = landmarks[:, :2]
    return np.array(
        [
            xy[list(RIGHT_EYE_CENTRE)].mean(axis=0),
            xy[list(LEFT_EYE_CENTRE)].mean(axis=0),
            xy[NOSE_TIP],
            xy[61],
            xy[291],
        ],
        np.float32,
    )


def _strip(contour: np.ndarray) -> list[tuple[int, int, int]]:
    """Triangles closing a hole whose contour runs corner -> upper -> corner -> lower."""
    n = len(contour)
    half = n // 2
    upper = [int(i) for i in contour[: half + 1]]
    lower = [int(contour[0])] + [int(i) for i in contour[half:][::-1]]
    tris = []
    for i in range(half):
        for t in ((upper[i], upper[i + 1], lower[i + 1]), (upper[i], lower[i + 1], lower[i])):
            if len(set(t)) == 3:
                tris.append(t)
    return tris


def closing_triangles() -> np.ndarray:
    """Triangles over the eye openings and between the lips (the mesh leaves them open).

    With them the whole face is one surface: eyelids that meet squeeze the eye to a line
    (a blink), lips that part stretch the seam (painted over by the mouth interior).
    """
    tris = _strip(RIGHT_EYE) + _strip(LEFT_EYE)
    return np.vstack([np.array(tris, np.int32), lip_strip()])


def lip_strip() -> np.ndarray:
    """The closing triangles between the lips."""
    return np.array(_strip(LIPS_INNER), np.int32)


@functools.cache
def render_triangles() -> np.ndarray:
    """The mesh's triangles plus the closing ones: what the mesh engines warp, all wound the
    same way round (``FRONT``)."""
    tris = np.asarray(topology.triangles(), np.int32).reshape(-1, 3)
    have = {tuple(sorted(t)) for t in tris.tolist()}
    extra = [t for t in closing_triangles().tolist() if tuple(sorted(t)) not in have]
    return wound_alike(np.vstack([tris, np.array(extra, np.int32).reshape(-1, 3)]))


# The sign of a front-facing triangle's signed area (image axes, y down) in the winding of
# ``render_triangles``: a triangle whose projection has the other sign shows its back.
FRONT = -1.0


def wound_alike(triangles: np.ndarray) -> np.ndarray:
    """``triangles`` turned so that neighbours run their shared edge in opposite directions
    (one orientation over the whole surface), facing the camera (``FRONT``) where most of
    them do on the canonical frontal face.

    The mesh's own lists do not keep one winding (tessellations rebuilt from edge lists, the
    closing strips), and a triangle folded in the frontal view (the face's sides, the nose's
    wings) cannot say from its own area which side is its front; its neighbours can.
    """
    tris = [list(t) for t in np.asarray(triangles).tolist()]
    by_edge: dict[frozenset, list[int]] = collections.defaultdict(list)
    for i, t in enumerate(tris):
        for u, v in zip(t, t[1:] + t[:1], strict=True):
            by_edge[frozenset((u, v))].append(i)
    done = [False] * len(tris)
    for seed in range(len(tris)):
        if done[seed]:
            continue
        done[seed], stack = True, [seed]
        while stack:
            t = tris[stack.pop()]
            for u, v in zip(t, t[1:] + t[:1], strict=True):
                pair = by_edge[frozenset((u, v))]
                for j in pair if len(pair) == 2 else ():
                    if not done[j]:
                        x = tris[j]
                        if (u, v) in zip(x, x[1:] + x[:1], strict=True):
                            x.reverse()
                        done[j] = True
                        stack.append(j)
    out = np.array(tris, np.int32)
    area = signed_areas(topology.canonical_points().astype(np.float64), out)
    return out if np.sum(np.sign(area)) * FRONT >= 0 else out[:, ::-1].copy()


def signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Each triangle's signed area in the image plane (``points``' x, y; y down)."""
    a, b, c = (points[triangles[:, k], :2] for k in range(3))
    e1, e2 = b - a, c - a
    return 0.5 * (e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
