"""One way to read a camera frame: ``as_bgr`` turns any frame the media engine takes into a
contiguous, writable H×W×3 uint8 BGR image, or refuses it with a clear ``FrameError``.

Perception (``media_engine.perception.perceiver``) and every fusion engine
(``media_engine.engines``) call this one function.
"""

import cv2
import numpy as np


class FrameError(ValueError):
    """The frame cannot be read as an image (wrong shape or type)."""


def as_bgr(frame: np.ndarray) -> np.ndarray:
    """The frame as a contiguous, writable BGR uint8 image. Grayscale (2-D or one channel)
    and BGRA are converted; anything else is refused with a clear error."""
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"a frame must be a numpy array, not {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise FrameError(f"a frame must be uint8 (0-255), not {frame.dtype}")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim == 2:
        if frame.size == 0:
            raise FrameError(f"the frame is empty ({frame.shape})")
        return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_GRAY2BGR)
    if frame.ndim != 3 or frame.shape[2] not in (3, 4):
        raise FrameError(f"a frame must be HxW, HxWx1, HxWx3 or HxWx4, not {frame.shape}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise FrameError(f"the frame is empty ({frame.shape})")
    if frame.shape[2] == 4:
        return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_BGRA2BGR)
    if not frame.flags.writeable or not frame.flags.c_contiguous:
        return np.array(frame, order="C", copy=True)
    return frame
