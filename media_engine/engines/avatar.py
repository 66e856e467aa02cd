"""The ``avatar`` engine: a presenter rig, driven by the visitor's face.

The output is a presenter (``presenter.py``: a shipped layered presenter, or a portrait cut
into the same layers) framed in the picture. Each frame the visitor's face is read as a head
rotation and a few normalised expression values (``expression.py``, relative to the current
person's own neutral); the presenter's head mesh takes the expression shapes and turns about
the neck pivot (``rig.py``), limited to what the rig can show, small turns in yaw and pitch
scaled up so that they read back from the drawn avatar as large as the visitor's. The torso
never moves; the neck bends smoothly from the collar to the jaw; hair behind the head follows
it; the visitor's translation moves the head only a little (damped and bounded) so it never
leaves the picture. Where the lips part, the mouth interior shows; a shutting eye gives way
to lid skin and a lash line. Without a face the presenter rests.

Rendering runs with OpenCV on the CPU (a few region-sized remaps and blends); the ONNX render
graph (``render_graph.py``) serves the ``swap`` engine's single-image warp.
"""

import functools
import math
from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np

from media_engine.engines import face_regions as fr
from media_engine.engines import rig as rg
from media_engine.engines.base import IdentityImage
from media_engine.engines.compositing import (
    Layer,
    affine_solver,
    blend,
    crop,
    head_affine,
    merged,
    neck_maps,
    split,
    torso_rows,
    unmerged,
)
from media_engine.engines.expression import ExpressionReader, Reading
from media_engine.engines.frames import as_bgr
from media_engine.engines.mouth import MIN_OPENING, opening, paint_mouth_interior
from media_engine.engines.portraits import default_avatar, portrait_for
from media_engine.engines.presenter import PresenterRig, load_presenter, presenter_from_photo
from media_engine.engines.reuse import FrameReuse
from media_engine.engines.warp import (
    Region,
    compute_grid,
    grid_step_for,
    refine_folds,
    region_around,
    soften_seams,
    upsample,
)
from media_engine.perception.types import Face

# The head's share of the frame's height kept free above it.
TOP_MARGIN = 0.06
# Filling the frame may crop at most this share of the canvas's height.
MAX_CROP = 0.15
# Translation: the head moves at most this share of the face width, reached smoothly as the
# visitor's face leaves the frame centre; each frame goes this share of the way.
MAX_OFFSET, OFFSET_SPAN, OFFSET_RATE = 0.22, 0.3, 0.25
# The jaw value (opening over mouth width) from which the mouth interior shows.
MOUTH_SHOWS = 0.02
# A drawn mouth interior fades in over this many pixels of the lips' opening.
MOUTH_FADE_PX = 1.5
# Lips this close (px, the rig at rest) touch: no interior shows, the seam closes the mouth.
LIPS_TOUCH = 0.4
# Where the mouth layer's throat begins below the lips' seam (models/scripts/presenter_face.py
# paints the upper teeth down to 0.04 mouth widths below it), in mouth widths.
THROAT_BELOW_SEAM = 0.1
# The head points whose least-squares affines move the whole head and the neck's top.
RING = slice(468, None)
JAW_LINE = fr.FACE_OVAL[12:25]
# The lower teeth (painted 0.24-0.36 mouth widths below the seam) rise into view once the
# lower lip has dropped this far (mouth widths), by up to this much.
LOWER_TEETH_FROM, LOWER_TEETH_RISE = 0.2, 0.28
# The upper teeth (painted down to 0.04 mouth widths below the seam) sit this much higher
# behind the upper lip while the lips are closed, and are in place once the lips are this
# far apart (mouth widths).
UPPER_TEETH_HIDE, UPPER_TEETH_SHOW = 0.1, 0.15
# Small turns: the rig's turn as perception reads it back from the drawn avatar is about 0.7
# of its yaw and 0.65 of its pitch (both presenters, 5-40 degrees: a frontal painting warped
# in 2.5-D lacks the shading and occlusion cues of a real turn; roll reads back 1:1), so a
# visitor's few degrees of turn drowned in what the expressions add to the read-back. Up to
# about SMALL_TURN degrees the visitor's yaw and pitch are scaled by these gains; beyond it
# the extra levels off at (gain - 1) * SMALL_TURN, so that large turns stay where the rig
# draws them cleanly (from about 25 degrees of yaw the far cheek's edge shows). The extra
# follows the visitor's turn smoothed (each frame TURN_RATE of the way), not its
# frame-to-frame jitter: that passes 1:1, so a still visitor's avatar moves no more than
# before (more motion costs the video's bits, and the provenance mark with them).
YAW_GAIN, PITCH_GAIN, SMALL_TURN, TURN_RATE = 1.45, 1.5, 10.0, 0.1
# Without a face, each frame keeps this share of the last pose and expression (eases to rest).
REST_RATE = 0.5
# A closing eye: from this closure on, the eye's inside is drawn from the lidded texture (the
# eye opening filled with the lid's skin), fully at LIDS_SHUT. The head's warp is upsampled
# from a grid a few pixels coarse, so a squeezed eye would otherwise still show a strip of
# iris and white a grid step tall (read back as a half-open eye).
LIDS_FROM, LIDS_SHUT = 0.5, 0.9
# Perception reads the drawn eyes wider when the jaw drops (both presenters, head still:
# eye aspect 0.327 -> 0.352 for mei, 0.309 -> 0.325 for daniel at jaw 0.25), where a real
# face's read narrower (the clips' eye and mouth readings correlate -0.1 to -0.5): the
# avatar's eyes "opened" with every wide mouth. The lids come down by this share of the
# jaw (0.15 of a closure at the rig's widest; 0.5 of the jaw read better still on
# talk_man_mouth but worse on grimaces_woman): eye read-back on talk_man_mouth 0.783 ->
# 0.898 (mei) and 0.672 -> 0.805 (daniel), grimaces_woman 0.694 -> 0.780 (daniel),
# bench/fidelity.py; the pitch read back on those clips falls by 0.01-0.05.
LIDS_PER_JAW = 0.3


@dataclass(frozen=True)
class Fitted:
    """The rig scaled and placed for one frame size (all in frame pixels)."""

    static: np.ndarray  # background with the torso over it
    background: np.ndarray
    torso: Layer
    hair_back: Layer | None
    neck: np.ndarray  # BGRA (one remap per frame), colour bled at the edges
    neck_box: tuple[int, int, int, int]
    head: np.ndarray  # BGRA: head with hair_front over it, colour bled at the edges
    mouth: Layer | None
    rest: np.ndarray  # (N, 3) head points
    rest_area: np.ndarray  # (T,) the head triangles' signed areas at rest
    pivot: np.ndarray  # (3,)
    shapes: np.ndarray  # (F, 468, 2)
    face_w: float
    collar_y: float
    ring_solver: np.ndarray  # (3, N): the rings' least-squares affine (affine_solver)
    jaw_solver: np.ndarray  # (3, 13): the jaw line's
    lidded: np.ndarray  # BGRA: the head's colour, eye openings filled with skin; alpha: eyes
    lash: tuple[float, float, float]  # BGR of the upper lids' line (where a shut eye meets)
    eye_w: float  # an eye's width, corner to corner


def _fit_layers(rig: PresenterRig, width: int, height: int) -> tuple[np.ndarray, dict]:
    cw, ch = rig.size
    s = max(width / cw, height / ch)
    if ch * s > (1 + MAX_CROP) * height:  # a tall canvas: fit its height, fill the sides
        s = height / ch
    face = rig.face.astype(np.float64)
    ring_top = face[:, 1].min() - 0.5 * np.ptp(face[:, 1])
    oy = float(np.clip(TOP_MARGIN * height - max(ring_top, 0) * s, height - ch * s, 0))
    place = np.array([[s, 0, (width - cw * s) / 2], [0, s, oy]])
    flags = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR

    def warp(image):
        if image is None:
            return None
        return cv2.warpAffine(image, place, (width, height), flags=flags,
                              borderMode=cv2.BORDER_REPLICATE if image.shape[2] == 3
                              else cv2.BORDER_CONSTANT)  # fmt: skip

    names = ("background", "hair_back", "torso", "neck", "head", "hair_front", "mouth")
    layers = {name: warp(getattr(rig, name)) for name in names}
    # Beyond a canvas narrower than the frame: the backdrop's edge colours, smoothed along
    # the edge (no streaks, no mirrored second shoulder).
    left, right = int(np.ceil(place[0, 2])), int(np.floor(place[0, 2] + cw * s))
    if left > 0 or right < width:
        bg = layers["background"]
        sigma = 0.08 * height
        for cols, edge in (
            (slice(0, left), min(left, width - 1)),
            (slice(right, width), max(right - 1, 0)),
        ):
            column = cv2.GaussianBlur(bg[:, edge : edge + 1].astype(np.float32), (1, 0), sigma)
            bg[:, cols] = np.clip(column + 0.5, 0, 255).astype(np.uint8)
    return place, layers


def fit_rig(rig: PresenterRig, width: int, height: int) -> Fitted:
    place, ly = _fit_layers(rig, width, height)
    s = place[0, 0]
    head = ly["head"].astype(np.float32)
    front = ly["hair_front"].astype(np.float32)
    fa = front[..., 3:4] / 255
    head[..., :3] = head[..., :3] * (1 - fa) + front[..., :3] * fa
    head[..., 3:4] = head[..., 3:4] + front[..., 3:4] * (1 - head[..., 3:4] / 255)
    head = (head + 0.5).astype(np.uint8)
    face = rig.face.astype(np.float64).copy()
    face[:, :2] = face[:, :2] * s + place[:, 2]
    face[:, 2] *= s
    face_w = float(np.ptp(face[fr.FACE_OVAL, 0]))
    pivot = np.array([*(rig.neck_pivot * s + place[:, 2]),
                      face[fr.FACE_OVAL, 2].mean() + 0.2 * face_w])  # fmt: skip
    rest = rg.head_points(face, head[..., 3], float(pivot[2]))
    torso = split(ly["torso"])
    static = blend(ly["background"], *torso)
    ys, xs = np.nonzero(ly["neck"][..., 3] > 0)
    neck_box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) if len(xs) \
        else (0, 0, 0, 0)  # fmt: skip
    hair_back = split(ly["hair_back"]) if ly["hair_back"][..., 3].any() else None
    mouth = split(ly["mouth"]) if ly["mouth"] is not None else None
    collar = float(pivot[1] + 0.6 * max(neck_box[3] - pivot[1], 1.0))
    rest_area = fr.signed_areas(rest, rg.head_triangles())
    return Fitted(static, ly["background"], torso, hair_back, merged(split(ly["neck"])), neck_box,
                  merged(split(head)), mouth, rest, rest_area, pivot,
                  rg.blend_shapes(face), face_w, collar, affine_solver(rest[RING, :2]),
                  affine_solver(rest[JAW_LINE, :2]), lidded(head, face), lash_colour(head, face),
                  _eye_width(face))  # fmt: skip


def _eye_width(face: np.ndarray) -> float:
    return float(np.linalg.norm(face[33, :2] - face[133, :2]))


def lash_colour(head: np.ndarray, face: np.ndarray) -> tuple[float, float, float]:
    """The darkest third of the colours along the upper lids (the painted lid line)."""
    pts = np.round(face[fr.UPPER_LIDS, :2]).astype(int)
    pts = np.clip(pts, 0, [head.shape[1] - 1, head.shape[0] - 1])
    colours = head[pts[:, 1], pts[:, 0], :3].astype(np.float64)
    dark = colours[np.argsort(colours.sum(1))[: max(1, len(colours) // 3)]]
    return tuple(float(c) for c in dark.mean(0))


def lidded(head: np.ndarray, face: np.ndarray) -> np.ndarray:
    """BGRA: the head's colour (BGRA in) with each eye opening filled from the skin around
    it (what a shut eye shows); the alpha marks the eyes (where a lash line may be drawn)."""
    bgr = np.ascontiguousarray(head[..., :3])
    mask = np.zeros(bgr.shape[:2], np.uint8)
    eye_w = _eye_width(face)
    for eye in (fr.RIGHT_EYE, fr.LEFT_EYE):
        cv2.fillPoly(mask, [np.round(face[eye, :2] * 4).astype(np.int32)], 255, cv2.LINE_8, 2)
    grow = max(1, round(0.06 * eye_w))
    mask = cv2.dilate(mask, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    filled = cv2.inpaint(bgr, mask, max(3, 2 * grow), cv2.INPAINT_TELEA)
    return cv2.merge([*cv2.split(filled), cv2.dilate(mask, np.ones((3, 3), np.uint8))])


def small_turn_gain(angle: float, gain: float, held: float | None = None) -> float:
    """``angle`` (degrees) with small turns scaled by ``gain`` and large ones by an extra
    that levels off at (gain - 1) · SMALL_TURN degrees (smooth, odd, increasing); the extra
    taken from ``held`` (the turn smoothed over frames) when given."""
    base = angle if held is None else held
    return angle + (gain - 1) * SMALL_TURN * math.tanh(base / SMALL_TURN)


@functools.cache
def _default_rig() -> PresenterRig:
    avatar = default_avatar()
    return presenter_from_photo(avatar.image, avatar.landmarks, avatar.name)


def rig_for(identity: IdentityImage | None) -> PresenterRig:
    """The identity's presenter: shipped layers, or its portrait cut into layers."""
    if identity is not None and identity.presenter:
        return load_presenter(identity.presenter)
    portrait = portrait_for(identity)
    if portrait.image is default_avatar().image:
        return _default_rig()
    return presenter_from_photo(portrait.image, portrait.landmarks, portrait.name)


class AvatarEngine:
    name: ClassVar[str] = "avatar"
    required_assets: ClassVar[tuple[str, ...]] = ("avatar_default", "avatar_default_landmarks")
    needs_identity: ClassVar[bool] = True

    def __init__(self, rig: PresenterRig) -> None:
        self.rig = rig
        self.triangles = rg.head_triangles()
        # Which triangles are drawn: all while the lips touch, all but the lips' seam once
        # they part (a slice takes no copy of the arrays on every frame).
        self._parted = ~rg.between_the_lips()
        self._closed = slice(None)
        self.reader = ExpressionReader()
        self._fitted: dict[tuple[int, int], Fitted] = {}
        self._offset = np.zeros(2)
        self._turn: np.ndarray | None = None  # the visitor's yaw and pitch, smoothed
        self._last_pose = rg.Pose(0.0, 0.0, 0.0, np.zeros(2))
        self._last_values = np.zeros(len(rg.FEATURES))
        self.last: rg.PosedHead | None = None
        self.reuse = FrameReuse()
        self._track: int | None = None

    @classmethod
    def for_identity(cls, identity: IdentityImage | None) -> "AvatarEngine":
        return cls(rig_for(identity))

    def fitted(self, width: int, height: int) -> Fitted:
        key = (width, height)
        if key not in self._fitted:
            if len(self._fitted) > 2:
                self._fitted.clear()
            self._fitted[key] = fit_rig(self.rig, width, height)
        return self._fitted[key]

    def pose_for(self, reading: Reading | None, width: int, height: int, face_w: float):
        """The rig's pose for this frame: the visitor's rotation, limited, and a damped,
        bounded head offset from where the visitor's face is in the frame. Without a face
        the last pose eases back to rest."""
        if reading is None:
            self._offset *= 1 - OFFSET_RATE
            self._turn = None
            last, values = self._last_pose, self._last_values * REST_RATE
            pose = rg.Pose(last.yaw * REST_RATE, last.pitch * REST_RATE,
                           last.roll * REST_RATE, self._offset.copy())  # fmt: skip
        else:
            off = (reading.centre - [width / 2, height / 2]) / max(width, height)
            want = MAX_OFFSET * face_w * np.tanh(off / OFFSET_SPAN)
            self._offset += OFFSET_RATE * (want - self._offset)
            turn = np.array([reading.yaw, reading.pitch])
            self._turn = (
                turn if self._turn is None else self._turn + TURN_RATE * (turn - self._turn)
            )
            yaw, pitch, roll = rg.clamp_pose(small_turn_gain(reading.yaw, YAW_GAIN, self._turn[0]),
                                             small_turn_gain(reading.pitch, PITCH_GAIN,
                                                             self._turn[1]),
                                             reading.roll)  # fmt: skip
            pose, values = rg.Pose(yaw, pitch, roll, self._offset.copy()), reading.values
        self._last_pose, self._last_values = pose, values
        return pose, values

    def render(self, frame: np.ndarray, face: Face | None) -> np.ndarray:
        frame = as_bgr(frame)
        height, width = frame.shape[:2]
        fit = self.fitted(width, height)
        reading = None
        if face is not None and np.isfinite(face.landmarks).all():
            reading = self.reader.read(face.landmarks, face.track_id)
            if face.track_id != self._track:  # another visitor: nothing drawn is reused
                self.reuse.clear()
                self._track, self._turn = face.track_id, None
        pose, values = self.pose_for(reading, width, height, fit.face_w)
        return self._draw(fit, pose, values)

    @property
    def drawn_with(self) -> tuple[rg.Pose, np.ndarray]:
        """The pose and expression values of the last frame drawn."""
        return self._last_pose, self._last_values

    def draw(self, width: int, height: int, pose: rg.Pose, values: np.ndarray) -> np.ndarray:
        """The presenter in ``pose`` with these expression values, in a frame of this size
        (no visitor: what ``render`` draws once it has read one)."""
        return self._draw(self.fitted(width, height), pose, np.asarray(values, np.float64))

    def _draw(self, fit: Fitted, pose: rg.Pose, values: np.ndarray) -> np.ndarray:
        values = _lids_with_the_jaw(values)
        rest = fit.rest.copy()
        moves = np.tensordot(values, fit.shapes, axes=1)
        rest[:468, :2] += moves
        # The rings around the face follow the oval (a lowered jaw takes the skin below along).
        rest[468:, :2] += np.tile(moves[fr.FACE_OVAL], (2, 1))
        rg.keep_lips_apart(rest)
        use = self._closed if rest[14, 1] - rest[13, 1] <= LIPS_TOUCH else self._parted
        posed = rg.pose_head(rest, fit.pivot, self.triangles[use], fit.rest_area[use], pose)
        # The picture follows from these points (and whether a painted mouth shows).
        painted = fit.mouth is None and bool(values[2] > MOUTH_SHOWS)
        if painted:
            painted = opening(posed.points[:468]) >= MIN_OPENING
        key = (fit.static.shape, painted)
        geometry = np.vstack([posed.points, rest[:, :2]])
        drawn = self.reuse.lookup(key, geometry)
        if drawn is not None:
            self.last = drawn.extra
            return drawn.frame.copy()
        self.last = posed
        out = self._compose(fit, rest, posed, values, pose)
        self.reuse.store(key, geometry, out, posed)
        return out

    def _compose(self, fit: Fitted, rest: np.ndarray, posed: rg.PosedHead, values: np.ndarray,
                 pose: rg.Pose) -> np.ndarray:  # fmt: skip
        out = fit.static.copy()
        full = (fit.ring_solver @ posed.points[RING]).T  # the head's overall affine
        jaw = (fit.jaw_solver @ rg.neck_top(rest[JAW_LINE], fit.pivot, pose)).T
        self._draw_body(out, fit, full, jaw)
        self._draw_head(out, fit, posed, full, values)
        if fit.mouth is None:
            if values[2] > MOUTH_SHOWS:
                paint_mouth_interior(out, posed.points[:468])
        else:
            _mouth_layer(out, fit, rest, posed, full)
        return out

    def _draw_body(self, out: np.ndarray, fit: Fitted, full: np.ndarray, jaw: np.ndarray):
        """Hair behind the head and the bending neck, between the backdrop and the torso."""
        x0, y0, x1, y1 = fit.neck_box
        if x1 <= x0:
            return
        # Only the neck below the jaw shows (the head is drawn over the rest).
        jaw_line = jaw[:, :2] @ fit.rest[JAW_LINE, :2].T + jaw[:, 2:]
        y0 = max(y0, int(min(jaw_line[1].min(), fit.pivot[1]) - 0.1 * fit.face_w))
        boxes = [np.array([[x0, y0], [x1, y1]], float)]
        if fit.hair_back is not None:
            hb = fit.rest[468:, :2]
            boxes.append(cv2.transform(hb[None], full)[0])
        region = region_around(np.vstack(boxes), out.shape[1], out.shape[0], margin=0.04)
        if region.empty:
            return
        part = fit.background[region.slices]
        if fit.hair_back is not None:
            m = cv2.invertAffineTransform(full)
            m[:, 2] += m[:, :2] @ [region.x, region.y]
            flags = cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR
            part = blend(part, *(cv2.warpAffine(c, m, (region.w, region.h), flags=flags)
                                 for c in fit.hair_back))  # fmt: skip
        # Below ``bottom`` the torso is opaque over the whole region (the frame already holds
        # it: ``static``); above ``top`` it is transparent (no torso blend there).
        top, bottom = torso_rows(fit.torso[1][region.slices])
        map_x, map_y = neck_maps(region, jaw, fit.pivot[1], fit.collar_y)
        if bottom < region.h:
            region = Region(region.x, region.y, region.w, bottom)
            part, map_x, map_y = part[:bottom], map_x[:bottom], map_y[:bottom]
        part = blend(part, *unmerged(cv2.remap(fit.neck, map_x, map_y, cv2.INTER_LINEAR)))
        if top < bottom:
            rows = (slice(region.y + top, region.y + bottom), region.slices[1])
            part[top:] = blend(part[top:], *crop(fit.torso, rows))
        out[region.slices] = part

    def _draw_head(self, out: np.ndarray, fit: Fitted, posed: rg.PosedHead, full: np.ndarray,
                   values: np.ndarray) -> None:  # fmt: skip
        region = region_around(posed.points, out.shape[1], out.shape[0], margin=0.0)
        if region.empty or min(region.w, region.h) < 4:
            return
        # One step coarser than the face engines' grid: the head region is larger (hair).
        step = grid_step_for(float(np.ptp(posed.points[fr.FACE_OVAL, 1]))) + 1
        # Outside the drawn triangles: the head's overall affine (a smooth map; the coverage
        # is the alpha there, so nothing of it shows).
        back = cv2.invertAffineTransform(full)
        grid = compute_grid(fit.rest[:, :2], posed.points, posed.triangles, region, step, back)
        map_x, map_y, cover = upsample(grid)
        refined = refine_folds(grid, (map_x, map_y, cover), fit.rest[:, :2], posed.points,
                               posed.triangles, back)  # fmt: skip
        # Float maps straight to remap: measured about twice as fast as converting them to
        # fixed point first (convertMaps + remap) on one thread.
        bgr, alpha = unmerged(cv2.remap(fit.head, map_x, map_y, cv2.INTER_LINEAR))
        out[region.slices] = blend(out[region.slices], bgr, alpha, cover)
        if refined is not None:
            soften_seams(out[region.slices], (map_x, map_y, cover), refined)
        _shut_eyes(out, fit, posed, values, region, (map_x, map_y, cover))


def _lids_with_the_jaw(values: np.ndarray) -> np.ndarray:
    """The expression values with each eye's closure raised by LIDS_PER_JAW of the jaw (a
    shut eye stays shut: never past 1, the lids would cross)."""
    jaw = float(values[2])
    if jaw <= 0.0:
        return values
    out = values.copy()
    out[:2] = np.minimum(out[:2] + LIDS_PER_JAW * jaw, np.maximum(out[:2], 1.0))
    return out


def _shut_eyes(out: np.ndarray, fit: Fitted, posed: rg.PosedHead, values: np.ndarray,
               region: Region, maps: tuple[np.ndarray, ...]) -> None:  # fmt: skip
    """Over each closing eye, the lidded texture through the head's own maps: the eye's
    inside gives way to lid skin as it shuts (LIDS_FROM to LIDS_SHUT)."""
    for eye, closure in ((fr.RIGHT_EYE, values[0]), (fr.LEFT_EYE, values[1])):
        weight = float(np.clip((closure - LIDS_FROM) / (LIDS_SHUT - LIDS_FROM), 0.0, 1.0))
        if weight <= 0.0:
            continue
        # The eye's box, grown by half an eye's width (a shut eye's points lie on a line).
        pts = posed.points[eye]
        pad = 0.5 * fit.eye_w
        x0 = int(max(pts[:, 0].min() - pad, region.x))
        y0 = int(max(pts[:, 1].min() - pad, region.y))
        x1 = int(min(pts[:, 0].max() + pad + 1, region.x + region.w))
        y1 = int(min(pts[:, 1].max() + pad + 1, region.y + region.h))
        if x1 <= x0 or y1 <= y0:
            continue
        sub = (slice(y0 - region.y, y1 - region.y), slice(x0 - region.x, x1 - region.x))
        skin, eye_seen = unmerged(cv2.remap(fit.lidded, maps[0][sub], maps[1][sub],
                                            cv2.INTER_LINEAR))  # fmt: skip
        part = out[y0:y1, x0:x1]
        cover = maps[2][sub] * np.float32(weight)
        part = blend(part, skin, np.full(skin.shape[:2], 255, np.uint8), cover)
        # The lid's line where the upper lid now lies, only where the eye shows (not over a
        # nose that hides it in a turn).
        line = np.zeros(skin.shape[:2], np.uint8)
        lid = np.round((pts[: len(eye) // 2 + 1] - [x0, y0]) * 4).astype(np.int32)
        cv2.polylines(line, [lid], False, 255, max(1, round(0.05 * fit.eye_w)), cv2.LINE_AA, 2)
        lash = np.empty_like(skin)
        lash[:] = fit.lash
        out[y0:y1, x0:x1] = blend(part, lash, cv2.min(line, eye_seen), cover)


# The upper lip and the nose base: where the mouth turned (the corners are left out: they
# drop with the jaw, and the interior would slide down under the upper lip).
_AROUND_MOUTH = [0, 37, 267, 39, 269, 2, 98, 327, 164, 167, 393]


def _mouth_layer(out: np.ndarray, fit: Fitted, rest: np.ndarray, posed: rg.PosedHead,
                 full: np.ndarray) -> None:  # fmt: skip
    """The mouth interior (teeth, tongue) inside the posed inner lips: the upper half moves
    with the upper lip, the lower half with the lower lip."""
    lips = posed.points[fr.LIPS_INNER]
    region = region_around(lips, out.shape[1], out.shape[0], margin=0.1)
    # Closed lips (the rig keeps them a fraction of a pixel apart) show no interior: it
    # fades in over the first pixels of the opening.
    shown = float(np.clip((rest[14, 1] - rest[13, 1] - LIPS_TOUCH) / MOUTH_FADE_PX, 0.0, 1.0))
    if region.empty or min(region.w, region.h) < 3 or shown <= 0.0:
        return
    # The mouth's own surroundings (upper lip, corners, nose base) say where it turned.
    near = _AROUND_MOUTH
    inv = cv2.invertAffineTransform(head_affine(rest[near, :2], posed.points[near]))
    xs = np.arange(region.x, region.x + region.w, dtype=np.float32)
    ys = np.arange(region.y, region.y + region.h, dtype=np.float32)
    gx, gy = np.meshgrid(xs, ys)
    qx = inv[0, 0] * gx + inv[0, 1] * gy + inv[0, 2]
    qy = inv[1, 0] * gx + inv[1, 1] * gy + inv[1, 2]
    d_up = rest[13, :2] - fit.rest[13, :2]
    d_lo = rest[14, :2] - fit.rest[14, :2]
    mid = (rest[13, 1] + rest[14, 1]) / 2
    lower = qy > mid
    # The lower half never reaches back above the upper teeth' edge (it would show them a
    # second time): between the teeth and the lower lip is the dark throat.
    seam = (fit.rest[13, 1] + fit.rest[14, 1]) / 2
    throat = seam + THROAT_BELOW_SEAM * abs(fit.rest[291, 0] - fit.rest[61, 0])
    # A wide opening shows the lower teeth behind the lower lip, as on a real face
    # (without them a wide mouth is a black hole whose lower lip perception misplaces):
    # they rise into view as the jaw drops beyond a speaking opening.
    width = abs(fit.rest[291, 0] - fit.rest[61, 0])
    rise = float(np.clip(d_lo[1] - LOWER_TEETH_FROM * width, 0.0, LOWER_TEETH_RISE * width))
    # Slightly parted lips show a dark line, not the teeth' white edge (a real mouth's upper
    # teeth stay behind the lip until it opens further): the teeth come down into view as
    # the lips part, in place once they are UPPER_TEETH_SHOW mouth widths apart.
    gap = rest[14, 1] - rest[13, 1]
    hide = UPPER_TEETH_HIDE * width * float(np.clip(1 - gap / (UPPER_TEETH_SHOW * width), 0, 1))
    map_x = (qx - np.where(lower, d_lo[0], d_up[0])).astype(np.float32)
    # Nor does the upper half reach down past the throat's top (a wide opening would show
    # the lower teeth there, hanging in the middle of the mouth).
    map_y = np.where(lower, np.maximum(qy - d_lo[1] + rise, throat),
                     np.minimum(qy - d_up[1] + hide, throat)).astype(np.float32)  # fmt: skip
    bgr, alpha = (cv2.remap(c, map_x, map_y, cv2.INTER_LINEAR) for c in fit.mouth)
    mask = np.zeros((region.h, region.w), np.uint8)
    poly = np.round((lips - [region.x, region.y]) * 4).astype(np.int32)
    cv2.fillPoly(mask, [poly], 255, cv2.LINE_AA, 2)
    out[region.slices] = blend(out[region.slices], bgr, alpha, mask * np.float32(shown / 255))


__all__ = ["AvatarEngine", "fit_rig", "rig_for"]
