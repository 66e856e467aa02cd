"""The ``swap`` engine: the visitor's face replaced by a presenter's face.

The presenter's portrait (an identity row) is warped piecewise-affinely onto the visitor's
landmarks every frame, so it follows their head, eyes and mouth (blinks made legible, see
``retarget.Eyelids``); its colour is matched
to the scene (mean and spread of each CIE Lab channel over the face, smoothed over frames); the
seam is feathered, and where the visitor's lips part their own mouth (teeth, tongue) shows
through. Without a face the frame passes unchanged.
"""

from typing import ClassVar

import cv2
import numpy as np

from media_engine.engines import face_regions as fr
from media_engine.engines.base import IdentityImage
from media_engine.engines.frames import as_bgr
from media_engine.engines.mouth import MIN_OPENING, opening
from media_engine.engines.portraits import Portrait, portrait_for
from media_engine.engines.render_graph import make_renderer
from media_engine.engines.retarget import Eyelids
from media_engine.engines.warp import (
    WarpGrid,
    compute_grid,
    grid_step_for,
    region_around,
    similarity_fit,
)
from media_engine.perception.types import Face

# Colour statistics follow the scene at this rate per frame (lighting changes, no flicker).
COLOUR_RATE = 0.25
GAIN_LIMITS = (0.5, 2.0)
# Feathering of the seam, in grid cells.
FEATHER_CELLS = 1.5


class SwapEngine:
    name: ClassVar[str] = "swap"
    required_assets: ClassVar[tuple[str, ...]] = ()
    needs_identity: ClassVar[bool] = True

    def __init__(self, portrait: Portrait) -> None:
        self.portrait = portrait
        self.points = portrait.landmarks[:, :2].astype(np.float64)
        self.triangles = fr.render_triangles()
        self.lab = cv2.cvtColor(portrait.image, cv2.COLOR_BGR2LAB)
        self.renderer = make_renderer(self.lab, lab=True, blend=True)
        self.eyelids = Eyelids()
        self._gain: np.ndarray | None = None
        self._offset: np.ndarray | None = None

    @classmethod
    def for_identity(cls, identity: IdentityImage | None) -> "SwapEngine":
        return cls(portrait_for(identity))

    def render(self, frame: np.ndarray, face: Face | None) -> np.ndarray:
        frame = as_bgr(frame)
        if face is None or not np.isfinite(face.landmarks).all():
            return frame
        height, width = frame.shape[:2]
        dest = self.eyelids.apply(np.asarray(face.landmarks, np.float64)[:, :2])
        region = region_around(dest[fr.FACE_OVAL], width, height, margin=0.03)
        if region.empty or min(region.w, region.h) < 4:
            return frame
        step = grid_step_for(float(np.ptp(dest[fr.FACE_OVAL, 1])))
        grid = compute_grid(
            self.points,
            dest,
            self.triangles,
            region,
            step,
            fallback=similarity_fit(dest, self.points),
        )
        alpha = self._alpha(grid, dest)
        gain, offset = self._colour(frame, grid, alpha)
        base = frame[region.slices]
        frame[region.slices] = self.renderer.render(
            grid, gain=gain, offset=offset, base=base, alpha=alpha
        )
        return frame

    def _alpha(self, grid: WarpGrid, dest: np.ndarray) -> np.ndarray:
        """The blend weight on the grid: the face, feathered, less the open mouth."""
        cover = grid.coverage
        inner = cv2.erode(cover, np.ones((3, 3), np.uint8))
        if opening(dest) >= MIN_OPENING:
            r, s = grid.region, grid.step
            lips = (dest[fr.LIPS_INNER] - [r.x, r.y] + 0.5) / s - 0.5
            hole = np.zeros_like(inner)
            cv2.fillPoly(hole, [np.round(lips * 16).astype(np.int32)], 1.0, cv2.LINE_AA, 4)
            # Grown by a cell so that the feathering stays on the lips, not in the mouth.
            inner = inner * (1.0 - cv2.dilate(hole, np.ones((3, 3), np.uint8)))
        return cv2.GaussianBlur(inner, (0, 0), FEATHER_CELLS)

    def _colour(
        self, frame: np.ndarray, grid: WarpGrid, alpha: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel Lab gain and offset taking the portrait's face colour to the scene's."""
        r, s = grid.region, grid.step
        gh, gw = alpha.shape
        ys = np.clip(np.round(r.y + (np.arange(gh) + 0.5) * s - 0.5), 0, frame.shape[0] - 1)
        xs = np.clip(np.round(r.x + (np.arange(gw) + 0.5) * s - 0.5), 0, frame.shape[1] - 1)
        flat = ys.astype(np.intp)[:, None] * frame.shape[1] + xs.astype(np.intp)[None, :]
        use = alpha.ravel() > 0.5
        if use.sum() < 8:
            return self._smoothed(np.ones(3), np.zeros(3))
        scene = np.take(frame.reshape(-1, 3), flat.ravel()[use], axis=0)
        scene_lab = cv2.cvtColor(scene[:, None, :], cv2.COLOR_BGR2LAB)[:, 0].astype(np.float32)
        sx = np.clip(np.round(grid.map_xy[0].ravel()[use]), 0, self.lab.shape[1] - 1)
        sy = np.clip(np.round(grid.map_xy[1].ravel()[use]), 0, self.lab.shape[0] - 1)
        src_flat = sy.astype(np.intp) * self.lab.shape[1] + sx.astype(np.intp)
        portrait_lab = np.take(self.lab.reshape(-1, 3), src_flat, axis=0).astype(np.float32)
        sd_p = portrait_lab.std(axis=0) + 1.0
        sd_s = scene_lab.std(axis=0) + 1.0
        gain = np.clip(sd_s / sd_p, *GAIN_LIMITS)
        offset = scene_lab.mean(axis=0) - gain * portrait_lab.mean(axis=0)
        return self._smoothed(gain, offset)

    def _smoothed(self, gain: np.ndarray, offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._gain is None:
            self._gain, self._offset = gain.astype(np.float32), offset.astype(np.float32)
        else:
            self._gain += COLOUR_RATE * (gain - self._gain)
            self._offset += COLOUR_RATE * (offset - self._offset)
        return self._gain, self._offset
