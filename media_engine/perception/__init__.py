"""Perception: find the visitor's face, its 468 landmarks and what they say.

The types here are the contract between perception and the fusion engines. ``Perceiver``
(one per session) is imported on first use, so that importing the types does not load
ONNX Runtime.
"""

from typing import TYPE_CHECKING

from media_engine.perception.types import Face, Measures

if TYPE_CHECKING:
    from media_engine.perception.perceiver import Perceiver, PerceptionTimings

__all__ = ["Face", "Measures", "Perceiver", "PerceptionTimings"]


def __getattr__(name: str):
    if name in ("Perceiver", "PerceptionTimings"):
        from media_engine.perception import perceiver

        return getattr(perceiver, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
