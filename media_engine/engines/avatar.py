"""The ``avatar`` engine: the digital human, driven by the visitor's face.

The output is the avatar portrait (the shipped default or an operator's own), fitted to the
frame, and moved every frame by the visitor's motion relative to their neutral face (see
``retarget.py``): the head's tilt, scale and position move the whole portrait; blinks, mouth,
brows and head turn move its landmarks, and the face is warped piecewise-affinely over the
mesh. Where the lips part, the inside of the mouth is painted. Without a face the avatar rests
in its neutral pose.
"""

from typing import ClassVar

import cv2
import numpy as np

from media_engine.engines import face_regions as fr
from media_engine.engines.base import IdentityImage
from media_engine.engines.frames import as_bgr
from media_engine.engines.mouth import paint_mouth_interior
from media_engine.engines.portraits import Portrait, portrait_for
from media_engine.engines.render_graph import make_renderer
from media_engine.engines.retarget import Retarget
from media_engine.engines.warp import (
    Region,
    apply_affine,
    compose,
    compute_grid,
    grid_step_for,
    invert,
    region_around,
)
from media_engine.perception.types import Face

# Frames without a face after which the next face is a new visitor (new calibration).
FORGET_AFTER = 45


class AvatarEngine:
    name: ClassVar[str] = "avatar"
    required_assets: ClassVar[tuple[str, ...]] = ("avatar_default", "avatar_default_landmarks")
    needs_identity: ClassVar[bool] = True

    def __init__(self, portrait: Portrait) -> None:
        self.portrait = portrait
        self.points = portrait.landmarks[:, :2].astype(np.float64)
        self.triangles = fr.render_triangles()
        self.retarget = Retarget(self.points)
        self.renderer = make_renderer(portrait.image, lab=False, blend=False)
        self._missing = 0

    @classmethod
    def for_identity(cls, identity: IdentityImage | None) -> "AvatarEngine":
        return cls(portrait_for(identity))

    def placement(self, width: int, height: int) -> np.ndarray:
        """The similarity fitting the portrait into a frame (centred, whole height)."""
        ph, pw = self.portrait.image.shape[:2]
        scale = min(height / ph, width / pw)
        return np.array(
            [[scale, 0.0, (width - pw * scale) / 2], [0.0, scale, (height - ph * scale) / 2]]
        )

    def render(self, frame: np.ndarray, face: Face | None) -> np.ndarray:
        frame = as_bgr(frame)
        height, width = frame.shape[:2]
        if face is not None and np.isfinite(face.landmarks).all():
            self._missing = 0
            motion = self.retarget.update(face.landmarks)
            points, head = motion.points, motion.head
        else:
            self._missing += 1
            if self._missing > FORGET_AFTER:
                self.retarget.reset()
            points, head = self.points, np.eye(2, 3)
        place = self.placement(width, height)
        to_frame = compose(place, head)
        out = cv2.warpAffine(
            self.portrait.image,
            to_frame,
            (width, height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        dest = apply_affine(place, points)
        region = region_around(dest[fr.FACE_OVAL], width, height, margin=0.04)
        if region.empty or min(region.w, region.h) < 4:
            return out
        face_height = float(np.ptp(dest[fr.FACE_OVAL, 1]))
        grid = compute_grid(
            self.points,
            dest,
            self.triangles,
            region,
            grid_step_for(face_height),
            fallback=invert(to_frame),
        )
        out[region.slices] = self.renderer.render(grid)
        paint_mouth_interior(out, dest)
        return out


__all__ = ["AvatarEngine", "Region"]
