"""The visitor's motion, relative to their own neutral face, carried onto another face.

Each frame the visitor's landmarks are brought into the target's frame by the similarity
that best aligns their stable points (eye corners, nose bridge, forehead) with the target's.
What remains after that alignment, minus the same for the visitor's neutral face, is the
expression (blinks, mouth, brows) and the out-of-plane head turn; the alignment itself,
relative to the neutral one, is the in-plane head motion (tilt, scale, position).

The neutral face is the mean of the first frames (calibration) and afterwards follows slowly,
only while the face is close to it, so that a held expression does not become neutral.
"""

from dataclasses import dataclass, field

import numpy as np

from media_engine.engines import face_regions as fr
from media_engine.engines.warp import apply_affine, compose, invert, similarity_fit

CALIBRATION_FRAMES = 8
# After calibration the neutral face follows at this rate while the face is near it.
NEUTRAL_RATE = 0.02
# "Near" in target pixels (root mean square over the landmarks), per 100 px of eye distance.
NEAR_NEUTRAL_RMS = 1.2
# How fast the neutral face follows a mouth more closed than it (a biased calibration).
MOUTH_CORRECTION_RATE = 0.2
# How much more than the visitor's (perceived) eye closing the target's lids close.
EYELID_GAIN = 2.0
# The head may move the target's face centre by at most this many eye distances.
MAX_SHIFT = 1.5


@dataclass
class Motion:
    """Where the target's landmarks go this frame, in the target's own coordinates."""

    points: np.ndarray  # (468, 2)
    head: np.ndarray  # 2×3 similarity: target neutral pose -> target pose now


@dataclass
class Retarget:
    target: np.ndarray  # (468, 2) the target's landmarks (avatar or portrait)
    frames: int = 0
    neutral: np.ndarray | None = None
    neutral_pose: np.ndarray | None = None
    _sum: np.ndarray | None = field(default=None, repr=False)
    _pose_sum: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.target = np.asarray(self.target, np.float64)[:, :2]
        eyes = self.target[list(fr.RIGHT_EYE_CENTRE)].mean(0) - self.target[
            list(fr.LEFT_EYE_CENTRE)
        ].mean(0)
        self.eye_distance = float(np.linalg.norm(eyes)) or 1.0

    def reset(self) -> None:
        self.frames = 0
        self.neutral = self.neutral_pose = self._sum = self._pose_sum = None

    def update(self, landmarks: np.ndarray) -> Motion:
        """Feed this frame's visitor landmarks (468×2+, pixels); get the target's motion."""
        visitor = np.asarray(landmarks, np.float64)[:, :2]
        to_target = similarity_fit(visitor[fr.STABLE], self.target[fr.STABLE])
        aligned = apply_affine(to_target, visitor)
        self._learn_neutral(aligned, to_target)
        residual = aligned - self.neutral
        points = self.target + residual
        self._carry_eyelids(points, aligned)
        _keep_lips_apart(points)
        # Pose: visitor now relative to neutral, expressed in the target's frame.
        head = compose(self.neutral_pose, invert(to_target))
        centre = self.target.mean(axis=0)
        shift = apply_affine(head, centre[None])[0] - centre
        limit = MAX_SHIFT * self.eye_distance
        head[:, 2] += np.clip(shift, -limit, limit) - shift
        return Motion(points=apply_affine(head, points), head=head)

    def _carry_eyelids(self, points: np.ndarray, aligned: np.ndarray) -> None:
        """Upper lids by the visitor's eye opening relative to neutral, not by distance.

        Eyes differ in size between faces: moving the target's lid by the visitor's lid
        distance would overshoot a smaller eye (folding the mesh) or not close a larger one.
        """
        upper, lower = fr.UPPER_LIDS, fr.LOWER_LIDS
        for side in (slice(0, len(upper) // 2), slice(len(upper) // 2, None)):
            u, lo = upper[side], lower[side]
            now = np.linalg.norm(aligned[u] - aligned[lo], axis=1).sum()
            neutral = np.linalg.norm(self.neutral[u] - self.neutral[lo], axis=1).sum()
            ratio = now / neutral if neutral > 1e-6 else 1.0
            # Landmark models read a closed eye as partly open: amplify closing.
            ratio = float(np.clip(1.0 - (1.0 - ratio) * EYELID_GAIN, 0.0, 1.4))
            points[u] = points[lo] + ratio * (self.target[u] - self.target[lo])

    def _learn_neutral(self, aligned: np.ndarray, to_target: np.ndarray) -> None:
        self.frames += 1
        if self.frames <= CALIBRATION_FRAMES:
            self._sum = aligned if self._sum is None else self._sum + aligned
            self._pose_sum = to_target if self._pose_sum is None else self._pose_sum + to_target
            self.neutral = self._sum / self.frames
            self.neutral_pose = self._pose_sum / self.frames
            return
        if _lip_gap(aligned) < _lip_gap(self.neutral) - 0.02 * self.eye_distance:
            # The mouth is more closed than the "neutral" one: the calibration caught the
            # visitor talking. Correct it quickly, or a closed mouth would squeeze the lips.
            self.neutral += MOUTH_CORRECTION_RATE * (aligned - self.neutral)
            return
        rms = float(np.sqrt(((aligned - self.neutral) ** 2).sum(axis=1).mean()))
        if rms < NEAR_NEUTRAL_RMS * self.eye_distance / 100:
            self.neutral += NEUTRAL_RATE * (aligned - self.neutral)
            self.neutral_pose += NEUTRAL_RATE * (to_target - self.neutral_pose)


# Inner-lip points facing each other (upper, lower), corners excluded.
_UPPER_LIP = np.array([191, 80, 81, 82, 13, 312, 311, 310, 415])
_LOWER_LIP = np.array([95, 88, 178, 87, 14, 317, 402, 318, 324])


def _lip_gap(points: np.ndarray) -> float:
    return float((points[_LOWER_LIP, 1] - points[_UPPER_LIP, 1]).mean())


def _keep_lips_apart(points: np.ndarray) -> None:
    """Never let the lower lip rise above the upper one (the mesh would fold)."""
    up, lo = points[_UPPER_LIP], points[_LOWER_LIP]
    crossed = lo[:, 1] < up[:, 1]
    if crossed.any():
        mid = (up[crossed] + lo[crossed]) / 2
        points[_UPPER_LIP[crossed]] = mid
        points[_LOWER_LIP[crossed]] = mid


@dataclass
class Eyelids:
    """Blinks made legible on a face drawn over the visitor's own landmarks (``swap``).

    Landmark models read a closed eye as partly open, so a portrait warped exactly onto the
    visitor's lids only squints when they blink. This closes the lids further, by the same
    gain as the avatar's, relative to the visitor's neutral opening (the first frames', then
    slowly followed while the eyes are open).
    """

    frames: int = 0
    neutral: np.ndarray | None = None  # per eye: lid gap over eye width

    def apply(self, points: np.ndarray) -> np.ndarray:
        """``points`` (468×2, frame pixels) with the upper lids moved; a new array."""
        out = np.array(points, np.float64, copy=True)
        upper, lower = fr.UPPER_LIDS, fr.LOWER_LIDS
        half = len(upper) // 2
        sides = ((slice(0, half), (33, 133)), (slice(half, None), (263, 362)))
        opening = np.empty(2)
        for k, (side, corners) in enumerate(sides):
            gap = np.linalg.norm(out[upper[side]] - out[lower[side]], axis=1).sum()
            width = np.linalg.norm(out[corners[0]] - out[corners[1]]) + 1e-6
            opening[k] = gap / width
        self.frames += 1
        if self.neutral is None:
            self.neutral = opening.copy()
        elif self.frames <= CALIBRATION_FRAMES:
            self.neutral += (opening - self.neutral) / self.frames
        else:
            open_now = opening > 0.85 * self.neutral
            self.neutral[open_now] += NEUTRAL_RATE * (opening - self.neutral)[open_now]
        for k, (side, _) in enumerate(sides):
            ratio = opening[k] / self.neutral[k] if self.neutral[k] > 1e-6 else 1.0
            wanted = float(np.clip(1.0 - (1.0 - ratio) * EYELID_GAIN, 0.0, max(ratio, 1.0)))
            scale = wanted / ratio if ratio > 1e-6 else 0.0
            u, lo = upper[side], lower[side]
            out[u] = out[lo] + (out[u] - out[lo]) * scale
        return out
