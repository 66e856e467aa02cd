"""Frames as the engines take them: any camera frame becomes contiguous BGR uint8."""

import cv2
import numpy as np


def as_bgr(frame: np.ndarray) -> np.ndarray:
    """A writable H×W×3 uint8 BGR copy or view of ``frame`` (gray, BGRA and BGR accepted)."""
    if frame.dtype != np.uint8:
        frame = np.clip(frame, 0, 255).astype(np.uint8)
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.ndim == 3 and frame.shape[2] == 1:
        return cv2.cvtColor(frame[:, :, 0], cv2.COLOR_GRAY2BGR)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected a gray, BGR or BGRA frame, got shape {frame.shape}")
    if not frame.flags.writeable or not frame.flags.c_contiguous:
        return np.ascontiguousarray(frame).copy()
    return frame
