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
    affine_grid,
    apply_affine,
    compose,
    compute_grid,
    grid_shape,
    grid_step_for,
    invert,
    region_around,
)
from media_engine.perception.types import Face

# Frames without a face after which the next face is a new visitor (new calibration).
FORGET_AFTER = 45
# The part of the portrait that moves with the head, around the face oval (shares of the
# face's size): hair above, ears and hair at the sides, the top of the neck below. Around
# it, a ramp of BLEND × face height joins it to the picture that stays still.
HEAD_TOP, HEAD_SIDES, HEAD_BOTTOM, BLEND = 0.34, 0.18, 0.1, 0.14


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
        self._still_cache: np.ndarray | None = None

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
        out = self._still(width, height, place).copy()
        rest = apply_affine(place, self.points[fr.FACE_OVAL])
        dest = apply_affine(place, points)
        oval = np.vstack([rest, dest[fr.FACE_OVAL]])
        face_w, face_h = float(np.ptp(oval[:, 0])), float(np.ptp(oval[:, 1]))
        if face_h < 4:
            return out
        lo, hi = oval.min(axis=0), oval.max(axis=0)
        head = np.array(
            [lo[0] - HEAD_SIDES * face_w, lo[1] - HEAD_TOP * face_h,
             hi[0] + HEAD_SIDES * face_w, hi[1] + HEAD_BOTTOM * face_h]
        )  # fmt: skip
        blend = BLEND * face_h
        region = region_around(
            np.array([head[:2] - blend, head[2:] + blend]), width, height, margin=0.0
        )
        if region.empty or min(region.w, region.h) < 4:
            return out
        step = grid_step_for(float(np.ptp(dest[fr.FACE_OVAL, 1])))
        # Outside the mesh: the head moves rigidly inside ``head`` and the picture stays
        # still at the region's border, with a smooth ramp between (the body does not tilt).
        moving = affine_grid(invert(to_frame), region, step)
        still = affine_grid(invert(place), region, step)
        weight = _ramp(region, step, head, blend)
        grid = compute_grid(
            self.points,
            dest,
            self.triangles,
            region,
            step,
            fallback=still + (moving - still) * weight,
        )
        out[region.slices] = self.renderer.render(grid)
        paint_mouth_interior(out, dest)
        return out

    def _still(self, width: int, height: int, place: np.ndarray) -> np.ndarray:
        """The portrait fitted to the frame, at rest (cached per frame size)."""
        if self._still_cache is None or self._still_cache.shape[:2] != (height, width):
            self._still_cache = cv2.warpAffine(
                self.portrait.image,
                place,
                (width, height),
                flags=cv2.INTER_AREA if place[0, 0] < 1 else cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )
        return self._still_cache


def _ramp(region: Region, step: int, head: np.ndarray, blend: float) -> np.ndarray:
    """1 inside the head box, falling smoothly to 0 at ``blend`` pixels outside it."""
    gh, gw = grid_shape(region, step)
    px = region.x + (np.arange(gw) + 0.5) * step - 0.5
    py = region.y + (np.arange(gh) + 0.5) * step - 0.5
    dx = np.maximum(np.maximum(head[0] - px, px - head[2]), 0.0) / max(blend, 1e-6)
    dy = np.maximum(np.maximum(head[1] - py, py - head[3]), 0.0) / max(blend, 1e-6)
    t = np.clip(1.0 - np.hypot(dx[None, :], dy[:, None]), 0.0, 1.0)
    return (t * t * (3 - 2 * t)).astype(np.float32)[None]


__all__ = ["AvatarEngine", "Region"]
