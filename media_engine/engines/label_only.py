"""The ``label`` engine: the camera passed through untouched, then labelled by the pipeline.

Used for the kiosk loop before a digital human is configured, and as the latency baseline.
"""

from typing import ClassVar

import numpy as np

from media_engine.perception.types import Face


class LabelOnlyEngine:
    name: ClassVar[str] = "label"
    required_assets: ClassVar[tuple[str, ...]] = ()
    needs_identity: ClassVar[bool] = False

    def render(self, frame: np.ndarray, face: Face | None) -> np.ndarray:
        return frame
