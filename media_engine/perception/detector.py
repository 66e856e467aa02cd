"""Face detection: MediaPipe's BlazeFace short-range model (128x128) through ONNX Runtime.

The frame is letterboxed into the model's 128x128 input (aspect ratio kept), the 896 anchor
outputs are decoded into boxes and six keypoints (visitor's right eye, left eye, nose tip,
mouth centre, right ear, left ear), and overlapping boxes are merged by weighted
non-maximum suppression, as MediaPipe's face detection graph does.
"""

from dataclasses import dataclass

import cv2
import numpy as np

from media_engine.runtime import ModelSession, shared_session

MODEL_NAME = "face_detection_short_range"
INPUT_SIZE = 128
MIN_SCORE = 0.5
NMS_IOU = 0.3
SCORE_CLIP = 100.0


@dataclass(frozen=True)
class Detection:
    """One face found by the detector, in frame pixels."""

    box: tuple[float, float, float, float]  # x, y, width, height
    keypoints: np.ndarray  # (6, 2): right eye, left eye, nose, mouth, right ear, left ear
    score: float

    @property
    def right_eye(self) -> np.ndarray:
        return self.keypoints[0]

    @property
    def left_eye(self) -> np.ndarray:
        return self.keypoints[1]


def ssd_anchors() -> np.ndarray:
    """The 896 anchor centres (x, y) in [0, 1] of BlazeFace short-range.

    MediaPipe's SsdAnchorsCalculator with 4 layers, strides 8, 16, 16, 16, one aspect ratio
    plus the interpolated scale, fixed anchor size: 2 anchors per cell on the 16x16 grid,
    6 per cell on the 8x8 grid (the three stride-16 layers share it).
    """
    anchors = []
    for grid, per_cell in ((16, 2), (8, 6)):
        ys, xs = np.mgrid[0:grid, 0:grid]
        centres = np.stack([(xs + 0.5) / grid, (ys + 0.5) / grid], axis=-1).reshape(-1, 2)
        anchors.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(anchors).astype(np.float32)


ANCHORS = ssd_anchors()


def letterbox(bgr: np.ndarray, size: int = INPUT_SIZE) -> tuple[np.ndarray, float, float, float]:
    """The frame scaled into a ``size`` square (RGB, float32 in [-1, 1], NHWC) and the
    transform back: frame = (tensor_px - offset) / scale."""
    h, w = bgr.shape[:2]
    scale = size / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(bgr, (new_w, new_h), interpolation=interpolation)
    off_x, off_y = (size - new_w) // 2, (size - new_h) // 2
    canvas = np.zeros((size, size, 3), np.uint8)
    canvas[off_y : off_y + new_h, off_x : off_x + new_w] = resized
    tensor = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB).astype(np.float32)
    tensor *= 2.0 / 255.0
    tensor -= 1.0
    # Scale per axis as actually resized (rounding), so boxes map back exactly.
    return tensor[None], new_w / w, off_x, off_y


def decode(
    regressors: np.ndarray, scores: np.ndarray, min_score: float = MIN_SCORE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (n, 4: x0, y0, x1, y1), keypoints (n, 6, 2) in [0, 1] and scores (n,) of the
    anchors whose score passes ``min_score``."""
    raw = regressors.reshape(-1, 16)
    logits = np.clip(scores.reshape(-1).astype(np.float64), -SCORE_CLIP, SCORE_CLIP)
    probs = 1.0 / (1.0 + np.exp(-logits))
    keep = np.flatnonzero(probs >= min_score)
    if keep.size == 0:
        return np.zeros((0, 4), np.float32), np.zeros((0, 6, 2), np.float32), np.zeros(0)
    raw = raw[keep] / INPUT_SIZE
    anchors = ANCHORS[keep]
    cx = raw[:, 0] + anchors[:, 0]
    cy = raw[:, 1] + anchors[:, 1]
    half_w, half_h = raw[:, 2] / 2, raw[:, 3] / 2
    boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
    keypoints = raw[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]
    return boxes, keypoints, probs[keep]


def iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], others[:, 0])
    y0 = np.maximum(box[1], others[:, 1])
    x1 = np.minimum(box[2], others[:, 2])
    y1 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, threshold: float = NMS_IOU
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's weighted non-maximum suppression: each cluster of boxes overlapping the
    best remaining one by more than ``threshold`` IoU is merged into their score-weighted
    mean; the cluster keeps the best score."""
    order = np.argsort(-scores)
    remaining = order
    merged = []
    while remaining.size:
        best = remaining[0]
        overlaps = iou(boxes[best], boxes[remaining])
        cluster = remaining[overlaps > threshold]
        if cluster.size == 0:  # a degenerate (zero-area) box overlaps nothing, not even itself
            cluster = remaining[:1]
        weights = scores[cluster][:, None]
        total = weights.sum()
        box = (boxes[cluster] * weights).sum(0) / total
        kps = (keypoints[cluster] * weights[:, :, None]).sum(0) / total
        merged.append((box, kps, float(scores[best])))
        remaining = remaining[~np.isin(remaining, cluster)]
    return merged


class FaceDetector:
    """Finds faces in a BGR frame; shares the process-wide model session."""

    def __init__(self, session: ModelSession | None = None, min_score: float = MIN_SCORE):
        self.session = session or shared_session(MODEL_NAME)
        self.min_score = min_score
        shapes = {
            name: out.shape
            for name, out in zip(
                self.session.output_names, self.session.session.get_outputs(), strict=True
            )
        }
        # The box regressors have 16 values per anchor, the scores one.
        self._regressors_index = next(
            i for i, name in enumerate(self.session.output_names) if shapes[name][-1] == 16
        )

    def detect(self, bgr: np.ndarray) -> list[Detection]:
        """All faces in the frame, best score first.

        The whole frame is letterboxed into the model's square input, which makes the faces
        of a wide frame small; when that finds nothing in a frame wider (or taller) than 6:5,
        the central square is searched too, where a kiosk's visitor stands.
        """
        detections = self._detect(bgr)
        h, w = bgr.shape[:2]
        if not detections and max(w, h) > 1.2 * min(w, h):
            side = min(w, h)
            x0, y0 = (w - side) // 2, (h - side) // 2
            detections = [
                Detection(
                    box=(d.box[0] + x0, d.box[1] + y0, d.box[2], d.box[3]),
                    keypoints=d.keypoints + np.array([x0, y0], np.float32),
                    score=d.score,
                )
                for d in self._detect(bgr[y0 : y0 + side, x0 : x0 + side])
            ]
        return detections

    def _detect(self, bgr: np.ndarray) -> list[Detection]:
        h, w = bgr.shape[:2]
        tensor, scale, off_x, off_y = letterbox(bgr)
        outputs = self.session.run(tensor)
        regressors = outputs[self._regressors_index]
        scores = outputs[1 - self._regressors_index]
        boxes, keypoints, probs = decode(regressors, scores, self.min_score)
        detections = []
        for box, kps, score in weighted_nms(boxes, keypoints, probs):
            # tensor [0, 1] -> tensor px -> frame px
            box_px = (box * INPUT_SIZE - [off_x, off_y, off_x, off_y]) / scale
            kps_px = (kps * INPUT_SIZE - [off_x, off_y]) / scale
            x0, y0, x1, y1 = (float(v) for v in box_px)
            if x1 <= x0 or y1 <= y0 or x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
                continue
            detections.append(
                Detection(
                    box=(x0, y0, x1 - x0, y1 - y0), keypoints=kps_px.astype(np.float32), score=score
                )
            )
        return detections
