"""The head of a presenter as a 2.5-D mesh: expressions as shapes, turns as 3-D rotations.

The head is the presenter's 468 face-mesh points (with their depth) plus two rings around
the face oval that reach out to the edge of the head layer (ears, hair), set further back so
that they turn like the back of a head. Expressions move the face points by fixed shapes
(blend shapes built once from the presenter's own face: an eye closing, the jaw opening, the
mouth widening, the corners lifting, the upper lip rising, a brow rising), weighted by the
visitor's normalised values. The head is then rotated in 3-D about the neck pivot and
projected (orthographically): triangles that turn their back to the camera are culled, and
the rest are drawn far to near, so a nose in front of a cheek hides it and no folded
triangle is drawn over another.
"""

import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np

from media_engine.engines import face_regions as fr
from media_engine.engines.expression import FEATURES

# What the rig can show, degrees.
MAX_YAW, MAX_PITCH, MAX_ROLL = 40.0, 25.0, 30.0
# The rings around the face: how far back they sit (a share of the way from the oval to the
# pivot's depth: the head's outline turns about its centre and stays roughly in place) and
# how far out they reach (a share of the way from the oval to the head layer's edge).
RING_DEPTHS = (0.6, 1.0)
RING_REACH = (0.5, 1.08)
# ... and how far back they sit straight above the face (between, by how upwards a ring
# point lies from the face's centre): the skull above the hairline curves back more gently
# than the sides of the head, and a ring as deep there as at the ears let a nod up carry
# the forehead past the hair above it (the face's top edge showed as a straight cut under
# the hair, both presenters, from about 15 degrees up; a band of 2-5 px stays at 25).
RING_TOP_DEPTHS = (0.12, 1.0)
# The least band of hair kept outside the turned face, in face widths.
OUTLINE_MARGIN = 0.04
_LOWER_LIP = [14, 87, 178, 88, 95, 317, 402, 318, 324, 17, 84, 181, 91, 146, 314, 405, 321, 375]
_JAW = [152, 148, 176, 149, 150, 377, 400, 378, 379, 175, 199, 200, 18, 201, 421, 428, 208]
# The mandible below the lower lip: the chin, the jaw line back to its angle.
_MANDIBLE = [*_JAW, 136, 172, 58, 365, 397, 288]
# The skin between the lower lip and the chin.
_CHIN_FRONT = [18, 200, 199, 175, 201, 421, 428, 208]
# The nose and the cheeks above the mouth: a jaw opening leaves them where they are (the
# shape used to drag the nose's tip down with the chin, stretching the nose).
_UPPER_CHEEKS = [4, 5, 195, 197, 6, 168, 205, 425, 50, 280, 187, 411, 207, 427, 216, 436, 147,
                 376, 123, 352, 177, 401, 132, 361]  # fmt: skip
# The chin's drop as a share of the lower lip's middle, and how fast the jaw line's falls
# off towards its angle (a power of the depth in front of the hinge).
CHIN_SHARE, JAW_FALLOFF = 0.55, 1.2
_UPPER_LIP_OUT = [0, 37, 267, 39, 269, 40, 270, 13, 82, 312, 81, 311, 80, 310]
_INNER_UP = np.array([191, 80, 81, 82, 13, 312, 311, 310, 415])
_INNER_DOWN = np.array([95, 88, 178, 87, 14, 317, 402, 318, 324])


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The 3×3 rotation (image axes: x right, y down, z away) with perception's angle
    conventions: yaw(pitch(roll(points)))."""
    y, p, r = math.radians(yaw), math.radians(pitch), math.radians(roll)
    cy, sy, cp, sp, cr, sr = math.cos(y), math.sin(y), math.cos(p), math.sin(p), math.cos(r), \
        math.sin(r)  # fmt: skip
    ry = np.array([[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]])
    rp = np.array([[1, 0, 0], [0, cp, sp], [0, -sp, cp]])
    rr = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return ry @ rp @ rr


def _shepard(xy: np.ndarray, index: list[int], moves: np.ndarray, sigma: float) -> np.ndarray:
    """Displacements: ``index`` points move by ``moves`` exactly; the others by a
    Gaussian-weighted mean of those moves near them, fading to nothing far away."""
    d2 = ((xy[:, None, :] - xy[index][None, :, :]) ** 2).sum(-1)
    w = np.exp(-d2 / (2 * sigma**2))
    out = (w[..., None] * moves[None]).sum(1) / np.maximum(w.sum(1, keepdims=True), 1.0)
    out[index] = moves
    return out


def _shape(xy, moving, move, fixed, sigma) -> np.ndarray:
    moves = np.vstack([np.asarray(move, float).reshape(-1, 2) * np.ones((len(moving), 1)),
                       np.zeros((len(fixed), 2))])  # fmt: skip
    return _shepard(xy, list(moving) + list(fixed), moves, sigma)


def _jaw_shape(face: np.ndarray, mouth_w: float, still: list[int]) -> np.ndarray:
    """The jaw opening at value 1: the lower lip drops by a mouth width in its middle (an
    oval, little at the corners); the mandible below it turns about its hinge in front of
    the ears, so the chin drops CHIN_SHARE of that and the jaw line less the further back
    it lies (as perception reads real faces: the chin drops 0.50-0.59 of the lips' parting,
    the jaw's angle hardly moves). The nose's bridge and tip and the cheeks above the mouth
    stay; the skin beside the nostrils still follows the corners a little (held still as
    well, the avatar's open mouth read back as 2-3 degrees of upward pitch at any opening,
    bench/fidelity.py)."""
    xy = face[:, :2].astype(np.float64)
    # How far in front of the hinge (the depth of the face's sides at ear level) each
    # point lies: the drop of a mandible point grows with it.
    forward = np.maximum((face[93, 2] + face[323, 2]) / 2 - face[:, 2].astype(np.float64), 0)
    chin = CHIN_SHARE * (forward[_MANDIBLE] / max(forward[152], 1e-6)) ** JAW_FALLOFF
    # Between the lower lip and the chin the skin goes from the lip's drop to the chin's
    # (the lower lip keeps its thickness; squeezed, a wide mouth read back as closing).
    y = xy[_MANDIBLE, 1]
    below_lip = np.clip((xy[152, 1] - y) / max(xy[152, 1] - xy[17, 1], 1e-6), 0, 1)
    chin = np.where(np.isin(_MANDIBLE, _CHIN_FRONT), CHIN_SHARE + (1 - CHIN_SHARE) * below_lip,
                    np.minimum(chin, 1.0)) * mouth_w  # fmt: skip
    centre_x = (xy[61, 0] + xy[291, 0]) / 2
    across = np.clip(np.abs(xy[_LOWER_LIP, 0] - centre_x) / (mouth_w / 2), 0, 1)
    lip_drop = (0.3 + 0.7 * (1 - across**2)) * mouth_w
    fixed = [*still, *_UPPER_CHEEKS]
    moves = np.zeros((len(_LOWER_LIP) + len(_MANDIBLE) + 4 + len(fixed), 2))
    moves[:, 1] = np.concatenate([lip_drop, chin, np.full(4, 0.3 * mouth_w), np.zeros(len(fixed))])
    return _shepard(xy, _LOWER_LIP + _MANDIBLE + [61, 291, 78, 308] + fixed, moves, 0.3 * mouth_w)


def blend_shapes(face: np.ndarray) -> np.ndarray:
    """(len(FEATURES), 468, 2): each feature's displacement of the face at value 1."""
    xy = face[:, :2].astype(np.float64)
    eye_w = float(np.linalg.norm(xy[33] - xy[133]) + np.linalg.norm(xy[263] - xy[362])) / 2
    mouth_w = float(np.linalg.norm(xy[61] - xy[291]))
    up, lo = fr.UPPER_LIDS, fr.LOWER_LIDS
    half = len(up) // 2
    shapes = []
    for side, corners, brow in ((slice(0, half), (33, 133), fr.RIGHT_BROW),
                                (slice(half, None), (263, 362), fr.LEFT_BROW)):  # fmt: skip
        fixed = [*lo[side], *corners, *brow]
        shapes.append(_shape(xy, up[side], xy[lo[side]] - xy[up[side]], fixed,
                             0.18 * eye_w))  # fmt: skip
    upper_face = [*fr.RIGHT_EYE, *fr.LEFT_EYE, 234, 454, 93, 323]
    # The whole upper lip stays (inner and outer line): at rest its inner points touch the
    # lower lip's, and left free they would drop with it and square the mouth off.
    still = [0, 13, 37, 267, 82, 312, 1, 2, 98, 327, *_INNER_UP, 39, 269, 40, 270, 185, 409,
             *upper_face]  # fmt: skip
    shapes.append(_jaw_shape(face, mouth_w, still))
    mids, corners = [0, 17, 13, 14, 1, 2, 152, *upper_face], [61, 78, 291, 308]
    half_w = 0.5 * mouth_w
    width_moves = np.array([[-half_w, 0], [-half_w, 0], [half_w, 0], [half_w, 0]])
    shapes.append(
        _shepard(
            xy, corners + mids, np.vstack([width_moves, np.zeros((len(mids), 2))]), 0.25 * mouth_w
        )
    )
    shapes.append(_shape(xy, corners, [0, -mouth_w], mids, 0.25 * mouth_w))
    shapes.append(_shape(xy, _UPPER_LIP_OUT, [0, -mouth_w], [1, 2, 98, 327, *_LOWER_LIP,
                                                             *upper_face],
                         0.2 * mouth_w))  # fmt: skip
    eyes = [*fr.RIGHT_EYE, *fr.LEFT_EYE, 168, 6]
    for brow in (fr.RIGHT_BROW, fr.LEFT_BROW):
        shapes.append(_shape(xy, brow, [0, -mouth_w], eyes, 0.35 * eye_w))
    assert len(shapes) == len(FEATURES)
    return np.stack(shapes)


def keep_lips_apart(points: np.ndarray) -> None:
    """Never let the lower inner lip rise above the upper one (the mesh would fold)."""
    up, lo = points[_INNER_UP], points[_INNER_DOWN]
    crossed = lo[:, 1] < up[:, 1] + 0.3
    if crossed.any():
        mid = (up[crossed] + lo[crossed]) / 2
        points[_INNER_UP[crossed], 1] = mid[:, 1] - 0.15
        points[_INNER_DOWN[crossed], 1] = mid[:, 1] + 0.15


@functools.cache
def head_triangles() -> np.ndarray:
    """What the rig draws: the face's triangles (wound alike, ``face_regions.FRONT``), then
    the rings'."""
    return np.vstack([fr.render_triangles(), ring_triangles()])


@functools.cache
def between_the_lips() -> np.ndarray:
    """Which of ``head_triangles`` close the lips. Parted lips show the mouth interior
    there (the presenter's mouth layer, or the painted one), so they are left out; closed
    lips keep them, to fill the gap a turn can open between lips that touch."""
    lips = {tuple(sorted(t)) for t in fr.lip_strip().tolist()}
    return np.array([tuple(sorted(t)) in lips for t in head_triangles().tolist()])


@functools.cache
def ring_triangles() -> np.ndarray:
    """Triangles joining the face oval to ring 1 (468 + i) and ring 1 to ring 2."""
    n = len(fr.FACE_OVAL)
    loops = [list(fr.FACE_OVAL), [468 + i for i in range(n)], [468 + n + i for i in range(n)]]
    tris = []
    for a, b in itertools.pairwise(loops):
        for i in range(n):
            j = (i + 1) % n
            tris += [(a[i], a[j], b[j]), (a[i], b[j], b[i])]
    return np.array(tris, np.int32)


def _reach(alpha: np.ndarray, centre: np.ndarray, direction: np.ndarray, start: float) -> float:
    """How far from ``centre`` along ``direction`` the layer's alpha still has pixels."""
    h, w = alpha.shape
    steps = np.arange(start, max(h, w), 2.0)
    pts = np.round(centre + direction * steps[:, None]).astype(int)
    inside = (pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)
    hits = np.zeros(len(steps), bool)
    hits[inside] = alpha[pts[inside, 1], pts[inside, 0]] > 8
    return float(steps[np.flatnonzero(hits)[-1]]) if hits.any() else start


def head_points(face: np.ndarray, head_alpha: np.ndarray, pivot_z: float) -> np.ndarray:
    """(468 + 2·36, 3): the face and the two rings out to the head layer's edge."""
    oval = face[fr.FACE_OVAL].astype(np.float64)
    centre = (oval[:, :2].min(0) + oval[:, :2].max(0)) / 2
    face_w = float(np.ptp(oval[:, 0]))
    v = oval[:, :2] - centre
    dist = np.linalg.norm(v, axis=1)
    direction = v / np.maximum(dist, 1e-6)[:, None]
    up = np.clip(-direction[:, 1], 0.0, 1.0)
    rings = []
    for side, top, reach in zip(RING_DEPTHS, RING_TOP_DEPTHS, RING_REACH, strict=True):
        ring = np.empty_like(oval)
        for i in range(len(oval)):
            edge = max(_reach(head_alpha, centre, direction[i], dist[i]), dist[i] * 1.06)
            r = dist[i] + reach * (edge - dist[i]) + 0.04 * face_w * (reach > 1)
            ring[i, :2] = centre + direction[i] * r
        depth = side + (top - side) * up
        ring[:, 2] = oval[:, 2] + depth * (pivot_z - oval[:, 2])
        rings.append(ring)
    return np.vstack([face.astype(np.float64), *rings])


@dataclass(frozen=True)
class Pose:
    yaw: float
    pitch: float
    roll: float
    offset: np.ndarray  # (2,) pixels the head moves (bounded by the engine)


@dataclass(frozen=True)
class PosedHead:
    points: np.ndarray  # (N, 2) posed, frame pixels
    depth: np.ndarray  # (N,) posed z (larger: further)
    triangles: np.ndarray  # drawn triangles, far to near
    culled: int  # triangles turned away from the camera


def clamp_pose(yaw: float, pitch: float, roll: float) -> tuple[float, float, float]:
    # Plain ``min``/``max``: ``np.clip`` on one number costs microseconds of call overhead.
    return (_clip(yaw, MAX_YAW), _clip(pitch, MAX_PITCH), _clip(roll, MAX_ROLL))


def _clip(value: float, limit: float) -> float:
    return float(min(max(value, -limit), limit))


def neck_top(points: np.ndarray, pivot: np.ndarray, pose: Pose) -> np.ndarray:
    """(N, 2): ``points`` (N×3, rest) posed as if they lay at the neck pivot's depth: where
    the top of the neck goes. A turn swings the chin sideways, but the neck turns about its
    own axis and stays upright: only the roll bends it, a nod shortens or lengthens it a
    little, and it follows the head's offset."""
    deep = points.astype(np.float64).copy()
    deep[:, 2] = pivot[2]
    return ((deep - pivot) @ rotation(pose.yaw, pose.pitch, pose.roll).T + pivot)[:, :2] + (
        pose.offset
    )


def keep_outline(turned: np.ndarray, rest: np.ndarray, pivot: np.ndarray, roll: float) -> None:
    """The outer ring (the head's outline) where it was, turned by the roll only, and pushed
    out wherever the turned face or inner ring would reach past it (a turn combined with a
    nod), so that a band of hair always stays round the face; in place."""
    n = len(fr.FACE_OVAL)
    outline = turned[-n:]
    outline[:, :2] = ((rest[-n:] - pivot) @ rotation(0.0, 0.0, roll).T + pivot)[:, :2]
    centre = outline[:, :2].mean(axis=0)
    out = outline[:, :2] - centre
    radius = np.linalg.norm(out, axis=1)
    out /= np.maximum(radius, 1e-6)[:, None]
    inside = np.vstack([turned[fr.FACE_OVAL, :2], turned[-2 * n : -n, :2]]) - centre
    # How far the face and inner ring reach along each outline point's direction, counting
    # the points within two outline steps of it (a turned cheek sticks out sideways).
    reach = inside @ out.T  # (points, directions)
    near = (inside / np.maximum(np.linalg.norm(inside, axis=1), 1e-6)[:, None]) @ out.T
    reach = np.where(near > np.cos(4 * np.pi / n), reach, -np.inf).max(axis=0)
    margin = OUTLINE_MARGIN * float(np.ptp(rest[fr.FACE_OVAL, 0]))
    outline[:, :2] = centre + out * np.maximum(radius, reach + margin)[:, None]


def pose_head(
    rest: np.ndarray, pivot: np.ndarray, triangles: np.ndarray, rest_area: np.ndarray, pose: Pose
) -> PosedHead:
    """The head points (N×3, expression already applied) rotated about ``pivot`` (3,).

    A triangle is drawn when it faces the camera (its signed area has the front's sign,
    ``face_regions.FRONT``: every triangle of the rig is wound alike) or lies as it does at
    rest (``rest_area``'s sign), by over 1e-3 px² either way. The second is for the
    triangles the presenter's own frontal picture folds (the face's sides near the ears,
    the nose's wings, the lips' inner rim): drawn as at rest, and drawn again once a turn
    unfolds them and shows their front (culling them then left holes beside the nose and
    between cheek and ear). The head's outline (the outer ring) keeps its place and turns
    only with the roll, as the outline of a round head does: the hair stays round the face
    in a turn instead of folding away behind it. Per triangle with ``np.take`` on contiguous
    coordinates: the same triangles, culled and ordered, as fancy indexing, at a fraction
    of its cost."""
    turned = (rest - pivot) @ rotation(pose.yaw, pose.pitch, pose.roll).T + pivot
    keep_outline(turned, rest, pivot, pose.roll)
    xy = turned[:, :2] + pose.offset
    x, y, z = (np.ascontiguousarray(c) for c in (xy[:, 0], xy[:, 1], turned[:, 2]))
    t0, t1, t2 = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    ax, ay = x.take(t0), y.take(t0)
    area = 0.5 * ((x.take(t1) - ax) * (y.take(t2) - ay) - (y.take(t1) - ay) * (x.take(t2) - ax))
    keep = np.flatnonzero((area * fr.FRONT > 1e-3) | (area * np.sign(rest_area) > 1e-3))
    depth = (z.take(t0) + z.take(t1) + z.take(t2)).take(keep)
    order = keep.take(np.argsort(-depth, kind="stable"))
    return PosedHead(xy, turned[:, 2], triangles.take(order, axis=0), len(triangles) - len(keep))
