"""The visible "AI-generated · AI合成" mark that every fused frame carries.

The label is a bitmap rendered at build time (``models/scripts/render_label.py``) because
OpenCV cannot draw CJK text. It is scaled once per frame width and alpha-blended into the
bottom-left corner of the frame in place. Any frame size works, down to 1×1.
"""

import functools
import sys

import cv2
import numpy as np

from media_engine.assets import cached_verified_path

LABEL_TEXT = "AI-generated · AI合成"
# The label spans this share of the frame width (readable at 360p, unobtrusive at 720p).
WIDTH_SHARE = 0.34
MARGIN_SHARE = 0.015
_HIGH_BYTE = 1 if sys.byteorder == "little" else 0  # of a uint16 viewed as two bytes


@functools.cache
def _label_rgba() -> np.ndarray:
    image = cv2.imread(str(cached_verified_path("label")), cv2.IMREAD_UNCHANGED)
    if image is None or image.ndim != 3 or image.shape[2] != 4:
        raise RuntimeError("models/assets/label.png is not an RGBA image")
    return image


@functools.lru_cache(maxsize=16)
def _scaled(frame_width: int, frame_height: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The label's BGR and alpha (uint16, 0..256) scaled for a frame, and its position."""
    rgba = _label_rgba()
    target_w = max(1, min(frame_width, round(frame_width * WIDTH_SHARE)))
    target_h = max(1, round(rgba.shape[0] * target_w / rgba.shape[1]))
    target_h = min(target_h, frame_height)
    scaled = cv2.resize(rgba, (target_w, target_h), interpolation=cv2.INTER_AREA)
    bgr = scaled[:, :, :3].astype(np.uint16)
    # 0..256 so that the blend is a shift instead of a division.
    alpha = (scaled[:, :, 3:4].astype(np.uint16) * 257 + 128) >> 8
    margin = round(min(frame_width, frame_height) * MARGIN_SHARE)
    x = min(margin, frame_width - target_w)
    y = max(0, frame_height - target_h - margin)
    inverse = np.repeat(256 - alpha, 3, axis=2)  # per channel, as OpenCV multiplies
    return bgr * alpha, inverse, x, y


def apply_label(frame: np.ndarray) -> np.ndarray:
    """Burn the label into a BGR (H×W×3, uint8) frame in place and return it."""
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected an H×W×3 uint8 BGR frame, got {frame.shape} {frame.dtype}")
    height, width = frame.shape[:2]
    premultiplied, inverse_alpha, x, y = _scaled(width, height)
    h, w = inverse_alpha.shape[:2]
    roi = frame[y : y + h, x : x + w]
    # (roi · (256 − a) + bgr · a) >> 8 with OpenCV's uint16 arithmetic (never above 65,280:
    # no saturation), the shift as the high byte of each uint16.
    mixed = cv2.multiply(roi, inverse_alpha, dtype=cv2.CV_16U)
    cv2.add(mixed, premultiplied, dst=mixed)
    roi[:] = mixed.view(np.uint8)[..., _HIGH_BYTE::2]
    return frame


def label_region(width: int, height: int) -> tuple[int, int, int, int]:
    """Where the label lands in a frame of this size: (x, y, w, h)."""
    premultiplied, _, x, y = _scaled(width, height)
    return x, y, premultiplied.shape[1], premultiplied.shape[0]
