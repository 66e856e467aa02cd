"""The 468-point face mesh: MediaPipe's face landmark model (192x192) through ONNX Runtime.

The face is cut out of the frame as a square region turned by the angle of the eyes (so the
model always sees an upright face), the model's points are mapped back into frame pixels, and
the model's face-presence output (a logit) becomes a score in [0, 1].
"""

import math
from dataclasses import dataclass

import cv2
import numpy as np

from media_engine.runtime import ModelSession, shared_session

MODEL_NAME = "face_landmark"
INPUT_SIZE = 192
NUM_LANDMARKS = 468
# MediaPipe's region around a face: the box grown 1.5 times, made square on its long side.
ROI_SCALE = 1.5
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263  # the points that set the region's angle


@dataclass(frozen=True)
class Region:
    """A square region of the frame, turned by ``angle`` radians (clockwise in the image,
    which has y down), centred on (``cx``, ``cy``), ``size`` pixels wide."""

    cx: float
    cy: float
    size: float
    angle: float

    def crop_to_frame(self) -> np.ndarray:
        """2x3 affine matrix taking crop coordinates (0..INPUT_SIZE) to frame coordinates."""
        k = self.size / INPUT_SIZE
        c, s = math.cos(self.angle) * k, math.sin(self.angle) * k
        half = INPUT_SIZE / 2
        return np.array(
            [
                [c, -s, self.cx - c * half + s * half],
                [s, c, self.cy - s * half - c * half],
            ],
            np.float64,
        )

    def corners(self) -> np.ndarray:
        m = self.crop_to_frame()
        square = np.array([[0, 0], [INPUT_SIZE, 0], [INPUT_SIZE, INPUT_SIZE], [0, INPUT_SIZE]])
        return square @ m[:, :2].T + m[:, 2]


def eye_angle(right_eye: np.ndarray, left_eye: np.ndarray) -> float:
    """The angle that turns the line from the visitor's right eye (image left) to their left
    eye (image right) horizontal, as MediaPipe computes a face region's rotation."""
    angle = -math.atan2(
        -(float(left_eye[1]) - float(right_eye[1])), float(left_eye[0]) - float(right_eye[0])
    )
    return (angle + math.pi) % (2 * math.pi) - math.pi


def region_from_box(
    box: tuple[float, float, float, float], right_eye: np.ndarray, left_eye: np.ndarray
) -> Region:
    """The landmark model's region for a detector box (x, y, w, h) and its eye keypoints."""
    x, y, w, h = box
    return Region(
        cx=x + w / 2, cy=y + h / 2, size=max(w, h) * ROI_SCALE, angle=eye_angle(right_eye, left_eye)
    )


def region_from_landmarks(landmarks: np.ndarray) -> Region:
    """The region for the next frame from this frame's landmarks: their bounding box in the
    frame turned upright by the eyes' angle, grown and made square."""
    angle = eye_angle(landmarks[RIGHT_EYE_OUTER], landmarks[LEFT_EYE_OUTER])
    c, s = math.cos(angle), math.sin(angle)
    pts = landmarks[:, :2].astype(np.float64)
    # Coordinates along the region's own axes.
    u = pts[:, 0] * c + pts[:, 1] * s
    v = -pts[:, 0] * s + pts[:, 1] * c
    u_mid, v_mid = (u.min() + u.max()) / 2, (v.min() + v.max()) / 2
    size = max(u.max() - u.min(), v.max() - v.min()) * ROI_SCALE
    return Region(cx=u_mid * c - v_mid * s, cy=u_mid * s + v_mid * c, size=size, angle=angle)


@dataclass(frozen=True)
class MeshResult:
    landmarks: np.ndarray  # (468, 3) float32, frame pixels (z in the same scale)
    presence: float  # face presence in [0, 1]


def crop(bgr: np.ndarray, region: Region) -> np.ndarray:
    """The model's input (1, 192, 192, 3) RGB float32 in [0, 1] for ``region`` of the frame.

    Only the part of the frame under the region is converted (to RGBA: OpenCV's warp is
    several times faster on four channels than on three); outside the frame is black.
    """
    h, w = bgr.shape[:2]
    corners = region.corners()
    x0 = max(math.floor(corners[:, 0].min()) - 2, 0)
    y0 = max(math.floor(corners[:, 1].min()) - 2, 0)
    x1 = min(math.ceil(corners[:, 0].max()) + 3, w)
    y1 = min(math.ceil(corners[:, 1].max()) + 3, h)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((1, INPUT_SIZE, INPUT_SIZE, 3), np.float32)
    source = cv2.cvtColor(bgr[y0:y1, x0:x1], cv2.COLOR_BGR2RGBA)
    m = region.crop_to_frame()
    # warpAffine samples at pixel centres: frame index = M @ (crop index + 0.5) - 0.5,
    # and the source starts at (x0, y0) of the frame.
    m_idx = m.copy()
    m_idx[:, 2] += m[:, :2].sum(axis=1) * 0.5 - 0.5 - (x0, y0)
    patch = cv2.warpAffine(
        source,
        m_idx,
        (INPUT_SIZE, INPUT_SIZE),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
    )
    # One pass: uint8 to float32 and the scale (the same values as astype, then *=).
    tensor = np.multiply(cv2.cvtColor(patch, cv2.COLOR_RGBA2RGB), np.float32(1.0 / 255.0),
                         dtype=np.float32)  # fmt: skip
    return tensor[None]


class FaceMesh:
    """Runs the face landmark model on a region of a frame; shares the process-wide session."""

    def __init__(self, session: ModelSession | None = None):
        self.session = session or shared_session(MODEL_NAME)
        outputs = self.session.session.get_outputs()
        sizes = [int(np.prod([d for d in o.shape if isinstance(d, int)])) for o in outputs]
        self._landmarks_index = sizes.index(NUM_LANDMARKS * 3)
        self._presence_index = sizes.index(1)

    def run(self, bgr: np.ndarray, region: Region) -> MeshResult:
        outputs = self.session.run(crop(bgr, region))
        raw = outputs[self._landmarks_index].reshape(NUM_LANDMARKS, 3).astype(np.float64)
        logit = min(max(float(outputs[self._presence_index].reshape(-1)[0]), -100.0), 100.0)
        m = region.crop_to_frame()
        landmarks = np.empty((NUM_LANDMARKS, 3), np.float32)
        landmarks[:, :2] = raw[:, :2] @ m[:, :2].T + m[:, 2]
        landmarks[:, 2] = raw[:, 2] * (region.size / INPUT_SIZE)
        return MeshResult(landmarks=landmarks, presence=1.0 / (1.0 + math.exp(-logit)))
