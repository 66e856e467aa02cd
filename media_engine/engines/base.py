"""The one interface every fusion engine implements.

An engine takes the visitor's frame and the tracked face (or ``None`` when there is no face)
and returns the frame to show. It never draws the label: the pipeline does that after every
engine, so no engine can forget it. Engines are built once per session from the kiosk's
configuration and are called from one thread at a time.
"""

from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np

from media_engine.perception.types import Face


@dataclass(frozen=True)
class IdentityImage:
    """The portrait an engine renders (avatar or presenter), decoded to BGR."""

    identity_id: int | None
    name: str
    image: np.ndarray
    # A shipped presenter's slug (``models/assets/presenters/<slug>/``): the avatar engine
    # renders its layered rig; ``image`` is then the rig at rest.
    presenter: str | None = None


@runtime_checkable
class FusionEngine(Protocol):
    name: ClassVar[str]
    # Manifest names (models/manifest.json) this engine loads.
    required_assets: ClassVar[tuple[str, ...]]
    # Whether the engine needs an identity portrait (avatar, swap) or not (blur, label).
    needs_identity: ClassVar[bool]

    def render(self, frame: np.ndarray, face: Face | None) -> np.ndarray:
        """Return the frame to show (BGR uint8, same size as ``frame``)."""
        ...
