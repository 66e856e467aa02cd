"""The ``blur`` engine: the visitor's face made unrecognisable (privacy demonstrations).

The face oval, grown a little to take in hairline and chin, is pixelated into coarse blocks
(about a dozen across the face) and smoothed, then feathered into the frame. Without a face
the frame passes unchanged.
"""

from typing import ClassVar

import cv2
import numpy as np

from media_engine.engines import face_regions as fr
from media_engine.engines.base import IdentityImage
from media_engine.engines.frames import as_bgr
from media_engine.engines.warp import region_around
from media_engine.perception.types import Face

BLOCKS_ACROSS = 10
GROW = 0.12  # the oval grown by this share of its size
FEATHER = 0.06  # edge softness as a share of the face width


class BlurEngine:
    name: ClassVar[str] = "blur"
    required_assets: ClassVar[tuple[str, ...]] = ()
    needs_identity: ClassVar[bool] = False

    @classmethod
    def for_identity(cls, identity: IdentityImage | None) -> "BlurEngine":
        return cls()

    def render(self, frame: np.ndarray, face: Face | None) -> np.ndarray:
        frame = as_bgr(frame)
        if face is None or not np.isfinite(face.landmarks).all():
            return frame
        height, width = frame.shape[:2]
        oval = np.asarray(face.landmarks, np.float64)[fr.FACE_OVAL, :2]
        centre = oval.mean(axis=0)
        oval = centre + (oval - centre) * (1 + GROW)
        region = region_around(oval, width, height, margin=0.08)
        if region.empty or min(region.w, region.h) < 2:
            return frame
        roi = frame[region.slices]
        face_w = max(float(np.ptp(oval[:, 0])), 1.0)
        block = max(2.0, face_w / BLOCKS_ACROSS)
        small_w = max(1, round(region.w / block))
        small_h = max(1, round(region.h / block))
        small = cv2.resize(roi, (small_w, small_h), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (3, 3), 0)
        coarse = cv2.resize(small, (region.w, region.h), interpolation=cv2.INTER_NEAREST)
        # The mask is drawn at the coarse resolution and smoothed up: cheap and soft.
        mask = np.zeros((small_h * 4, small_w * 4), np.float32)
        scale = np.array([small_w * 4 / region.w, small_h * 4 / region.h])
        pts = (oval - [region.x, region.y]) * scale
        cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 1.0, cv2.LINE_AA, 4)
        sigma = max(0.5, FEATHER * face_w * scale[0])
        mask = cv2.GaussianBlur(mask, (0, 0), sigma)
        alpha = cv2.resize(mask, (region.w, region.h), interpolation=cv2.INTER_LINEAR)
        a = alpha[..., None]
        roi[:] = (roi + (coarse.astype(np.float32) - roi) * a + 0.5).astype(np.uint8)
        return frame
