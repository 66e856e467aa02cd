"""The neutral "Service paused / 服务已暂停" picture sent while face fusion is off.

When the fusion switch is off for a kiosk, or its state cannot be read (fail closed), a
session sends this picture instead of any fused or camera frame. The picture is rendered at
build time (``models/scripts/render_paused.py``) and fitted, once per frame size, into the
camera's frame size with its own background colour around it. It carries no label: it is not
AI-generated.
"""

import functools

import cv2
import numpy as np

from media_engine.assets import cached_verified_path


@functools.cache
def _paused_bgr() -> np.ndarray:
    image = cv2.imread(str(cached_verified_path("paused")), cv2.IMREAD_COLOR)
    if image is None:
        raise RuntimeError("models/assets/paused.png is not a readable image")
    return image


@functools.lru_cache(maxsize=8)
def paused_frame(width: int, height: int) -> np.ndarray:
    """The paused picture at ``width``×``height`` (BGR uint8, read-only: copy to draw on it)."""
    if width < 1 or height < 1:
        raise ValueError(f"frame size must be positive, got {width}x{height}")
    source = _paused_bgr()
    background = source[0, 0]
    scale = min(width / source.shape[1], height / source.shape[0])
    fit_w = max(1, min(width, round(source.shape[1] * scale)))
    fit_h = max(1, min(height, round(source.shape[0] * scale)))
    frame = np.empty((height, width, 3), np.uint8)
    frame[:] = background
    x, y = (width - fit_w) // 2, (height - fit_h) // 2
    frame[y : y + fit_h, x : x + fit_w] = cv2.resize(
        source, (fit_w, fit_h), interpolation=cv2.INTER_AREA
    )
    frame.setflags(write=False)
    return frame
