"""Frames as the engines take them: ``media_engine.frames.as_bgr``, the one reader of a
camera frame (kept importable here for the engines)."""

from media_engine.frames import FrameError, as_bgr

__all__ = ["FrameError", "as_bgr"]
