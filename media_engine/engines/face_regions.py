"""Which of the 468 mesh landmarks outline the parts the engines draw or mask.

Indices of MediaPipe's face mesh, each contour in order around its part. "Left" is the
visitor's (or portrait's) own left, which appears on the image's right.
"""

import functools

import numpy as np

FACE_OVAL = np.array(
    [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
     152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
)  # fmt: skip
LIPS_OUTER = np.array(
    [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146]
)  # fmt: skip
LIPS_INNER = np.array(
    [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95]
)  # fmt: skip
RIGHT_EYE = np.array(
    [33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7]
)  # fmt: skip
LEFT_EYE = np.array(
    [263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249]
)  # fmt: skip
RIGHT_BROW = np.array([46, 53, 52, 65, 55, 107, 66, 105, 63, 70])
LEFT_BROW = np.array([276, 283, 282, 295, 285, 336, 296, 334, 293, 300])
# Upper-lid contour points (right eye, then left) and the lower-lid points facing them.
UPPER_LIDS = np.array([246, 161, 160, 159, 158, 157, 173, 466, 388, 387, 386, 385, 384, 398])
LOWER_LIDS = np.array([7, 163, 144, 145, 153, 154, 155, 249, 390, 373, 374, 380, 381, 382])
NOSE_TIP = 1
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
    tris = _strip(RIGHT_EYE) + _strip(LEFT_EYE) + _strip(LIPS_INNER)
    return np.array(tris, np.int32)


@functools.cache
def render_triangles() -> np.ndarray:
    """The mesh's triangles plus the closing ones: what the mesh engines warp."""
    from media_engine.perception.topology import TRIANGLES

    tris = np.asarray(TRIANGLES, np.int32).reshape(-1, 3)
    have = {tuple(sorted(t)) for t in tris.tolist()}
    extra = [t for t in closing_triangles().tolist() if tuple(sorted(t)) not in have]
    return np.vstack([tris, np.array(extra, np.int32).reshape(-1, 3)])
