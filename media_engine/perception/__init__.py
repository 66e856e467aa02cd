"""Perception: find the visitor's face, its 468 landmarks and what they say.

The types here are the contract between perception and the fusion engines.
"""

from media_engine.perception.types import Face, Measures

__all__ = ["Face", "Measures"]
