"""The visitor's face read as a head pose and a few normalised expression values.

Pose apart from expression: the head's rotation is the one that best fits the canonical
face's rigid points onto the landmarks in 3-D (perception's Kabsch fit, the landmarks carry
depth), as MediaPipe's face geometry does. The landmarks are then brought back into the
canonical frontal frame (rotation, scale and position removed), and only there are the
features read: each eye's opening, the inner-lip gap, the mouth's width, the corners' lift
(smile), the upper lip's lift, each brow's height. Each is taken relative to the person's own
neutral and divided by a size of that person's face, so what reaches the avatar is "left eye
80 % closed, jaw open by 0.3 mouth widths", never a landmark offset: the visitor's face shape
and position never carry over.

The neutral is per person: a new track starts a new one. It is learned only from frames that
are near-frontal and nearly expressionless (mouth closed, eyes open), never from a face at a
large angle, then follows slowly while the face stays near it.
"""

import functools
from dataclasses import dataclass, field

import numpy as np

from media_engine.perception import topology as t
from media_engine.perception.measures import head_angles

# What may calibrate the neutral: near-frontal, mouth closed, eyes open.
NEUTRAL_MAX_YAW, NEUTRAL_MAX_PITCH, NEUTRAL_MAX_ROLL = 12.0, 12.0, 20.0
NEUTRAL_MAX_GAP = 0.22  # inner-lip gap over mouth width (a parted smile is calm)
NEUTRAL_MIN_EYE = 0.18  # eye aspect ratio
CALIBRATION_FRAMES = 6
# "Near" the neutral: lip gap within this much (over mouth width), eyes within this share.
NEAR_GAP, NEAR_EYE = 0.02, 0.1
NEUTRAL_RATE = 0.02
JAW_NEUTRAL_RISE = 0.002
# The closed mouth's gap starts at most JAW_NEUTRAL_PRIOR mouth widths: closed lips read
# 0.0-0.035 on the real clips, but a visitor's first frames are often slightly parted
# (0.045-0.068: talk_man_glasses, talk_woman_expressions), and a neutral learned there made
# the same opening read closed at first and open once the lips had met (mouth read-back,
# bench/fidelity.py: talk_man_glasses 0.896 -> 0.958 mei, 0.883 -> 0.973 daniel,
# talk_woman_expressions 0.892 -> 0.930 mei; the earlier, larger speech costs that clip's
# pitch read-back 0.872 -> 0.774 for daniel, a 4-degree span). A gap of PARTED_AT_REST or
# more through the calibration is a mouth that rests parted (the astronaut's smile, 0.17):
# it stays the neutral. A mouth that rests still above the neutral (gap within MOUTH_STILL
# of its recent mean for MOUTH_STILL_FRAMES frames) becomes it within a few frames
# (MOUTH_STILL_RATE of the way each frame): speech never rests that long.
JAW_NEUTRAL_PRIOR, PARTED_AT_REST = 0.03, 0.1
MOUTH_STILL, MOUTH_STILL_FRAMES, MOUTH_STILL_RATE = 0.01, 30, 0.1
# Landmark models read a closed eye as partly open: closing is amplified.
EYELID_GAIN = 3.0
# The jaw: the visitor's opening over their neutral, normalised by the widest opening this
# person has shown (at least JAW_RANGE_MIN mouth widths), maps linearly onto the rig's
# range, 0 to JAW_MAX (perception reads the rig's hinged jaw, rig.py, opening wider up to
# about 0.45-0.5 and no further: beyond it the read-back falls). Speech (0.05-0.12 mouth
# widths over the neutral) thus moves the jaw by 2.5 times its opening, while a person who
# opens wide is followed without a saturating ceiling. The widest opening is forgotten
# slowly (JAW_RANGE_DECAY per frame) and with a new track.
JAW_MAX, JAW_RANGE_MIN, JAW_RANGE_DECAY = 0.5, 0.2, 0.999
# An eye's closure from its narrowing (1 - opening / neutral opening): a narrowing below
# EYE_DEAD is shown as open, one of EYE_FULL or more as closed (a blink reads 0.4-0.6).
# Looking down lowers the lids too (0.3 narrowing at 9 degrees down on real clips): the
# part the head's downward pitch beyond PITCH_FREE degrees explains is taken out first, so
# that a visitor reading a form does not make the presenter close its eyes (a jaw opening
# reads as a few degrees of pitch: those do not count).
EYE_DEAD, EYE_FULL = 0.0, 0.333
EYE_PER_PITCH, PITCH_FREE = 0.025, 4.0

# The upper lip's lift over the neutral (mouth widths) is shown only beyond
# UPPER_LIP_DEAD, and never below it. On the real talking clips the landmark model moves
# the upper lip by up to ±0.06-0.08 with nobody sneering (95 % of frames within ±0.06; it
# follows the read nod, r = -0.71 on one clip, or the lips' parting, r = -0.70 and -0.83
# on two others). Drawn, that drift moved the avatar's upper lip into and out of the
# opening the jaw drew, and perception read it back as a nod (0.08 of lift reads as 2-3
# degrees of pitch on either presenter). A real raise (a sneer) goes beyond it.
UPPER_LIP_DEAD = 0.06

FEATURES = ("eye_close_r", "eye_close_l", "jaw", "width", "smile", "upper_lip", "brow_r",
            "brow_l")  # fmt: skip
_RIGID = np.array(t.RIGID)
# Distances the features need, in one numpy call: right lids, right corners, left lids,
# left corners, mouth corners.
_PAIRS = np.array([*t.RIGHT_EYE_LIDS, t.RIGHT_EYE_CORNERS, *t.LEFT_EYE_LIDS,
                   t.LEFT_EYE_CORNERS, t.MOUTH_CORNERS])  # fmt: skip
_GAP = np.array(t.INNER_LIP_GAP)
# Every point ``raw_features`` reads.
_NAMED = [61, 291, 13, 2, 0, 33, 133, 105, 66, 263, 362, 334, 296]
_READ = np.unique(np.concatenate([_PAIRS.ravel(), _GAP.ravel(), _NAMED]))


@dataclass(frozen=True)
class Reading:
    """One frame of the visitor: rotation angles (degrees) and the expression values."""

    yaw: float
    pitch: float
    roll: float
    values: np.ndarray  # len(FEATURES), in FEATURES order
    centre: np.ndarray  # (2,) face centre in the frame's pixels
    size: float  # the face's scale (frame pixels per canonical unit)


@functools.cache
def _canonical_rigid() -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The canonical face's rigid points: (points, their mean, centred, centred energy)."""
    canon = t.canonical_points()[_RIGID].astype(np.float64)
    cm = canon.mean(0)
    a = canon - cm
    return canon, cm, a, float((a**2).sum())


def canonical_fit(points: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """(R, s, t) with points ≈ s · R · canonical + t over the rigid points (3-D Kabsch)."""
    _, cm, a, energy = _canonical_rigid()
    obs = points[_RIGID]
    om = obs.mean(0)
    b = obs - om
    u, sv, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.diag([1.0, 1.0, d])
    rotation = (u @ fix @ vt).T
    scale = float((sv * np.diag(fix)).sum() / energy)
    return rotation, scale, om - scale * rotation @ cm


def raw_features(canonical: np.ndarray) -> np.ndarray:
    """Shape numbers of a face in the canonical frame (see ``FEATURES``), before the
    neutral: eye aspect ratios, lip gap / mouth width, width, lifts and brow heights."""
    p = canonical
    # Plain floats: a numpy mean per number costs more than the arithmetic (the sums run
    # in numpy's order over so few values: the same numbers).
    d = np.linalg.norm(p[_PAIRS[:, 0]] - p[_PAIRS[:, 1]], axis=1).tolist()
    eye_r, eye_l, width = (d[0] + d[1] + d[2]) / 3 / d[3], (d[4] + d[5] + d[6]) / 3 / d[7], d[8]
    g = (p[_GAP[:, 1], 1] - p[_GAP[:, 0], 1]).tolist()
    gap = (g[0] + g[1] + g[2]) / 3
    y = p[:, 1]
    corners = (y[61] + y[291]) / 2
    return np.array([
        eye_r, eye_l,
        gap / width,
        width,
        # Corners above the upper lip (a smile); the corners' share of the jaw's opening
        # (the rig's jaw shape lowers them by 0.3 of it) is taken out.
        y[13] - corners + 0.3 * gap,
        y[2] - y[0],  # the nose base's height over the upper lip, negated: rises with the lip
        (y[33] + y[133]) / 2 - (y[105] + y[66]) / 2,  # brow above the eye's corners
        (y[263] + y[362]) / 2 - (y[334] + y[296]) / 2,
    ])  # fmt: skip


@dataclass
class ExpressionReader:
    """Per-session state: the current track's neutral."""

    track: int | None = None
    neutral: np.ndarray | None = None
    neutral_pitch: float = 0.0
    samples: int = 0
    jaw_range: float = JAW_RANGE_MIN
    _gap_mean: float = 0.0
    _still_frames: int = 0
    _sum: np.ndarray | None = field(default=None, repr=False)

    def reset(self) -> None:
        self.neutral, self.samples, self._sum, self.neutral_pitch = None, 0, None, 0.0
        self.jaw_range, self._gap_mean, self._still_frames = JAW_RANGE_MIN, 0.0, 0

    def read(self, landmarks: np.ndarray, track: int | None = None) -> Reading:
        """The pose and the expression values (zeros until a neutral is learned)."""
        if track != self.track:
            self.track = track
            self.reset()
        points = np.asarray(landmarks, np.float64)
        rotation, scale, shift = canonical_fit(points)
        yaw, pitch, roll = head_angles(rotation)
        # Only the points the features read are brought into the canonical frame.
        canonical = np.empty_like(points)
        canonical[_READ] = (points[_READ] - shift) @ rotation / scale
        raw = raw_features(canonical)
        self._learn(raw, yaw, pitch, roll)
        values = np.zeros(len(FEATURES))
        if self.neutral is not None:
            values = self._values(raw, pitch)
        return Reading(yaw, pitch - self.neutral_pitch, roll, values,
                       points[:, :2].mean(0), scale)  # fmt: skip

    def _learn(self, raw: np.ndarray, yaw: float, pitch: float, roll: float) -> None:
        frontal = (abs(yaw) < NEUTRAL_MAX_YAW and abs(pitch) < NEUTRAL_MAX_PITCH
                   and abs(roll) < NEUTRAL_MAX_ROLL)  # fmt: skip
        calm = raw[2] < NEUTRAL_MAX_GAP and min(raw[0], raw[1]) > NEUTRAL_MIN_EYE
        if not (frontal and calm):
            return
        if self.samples < CALIBRATION_FRAMES:
            self.samples += 1
            self._sum = raw if self._sum is None else self._sum + raw
            self.neutral = self._sum / self.samples
            self._gap_mean = raw[2]
            if self.neutral[2] < PARTED_AT_REST:
                self.neutral[2] = min(self.neutral[2], JAW_NEUTRAL_PRIOR)
            self._pitch_sum = pitch if self.samples == 1 else self._pitch_sum + pitch
            self.neutral_pitch = self._pitch_sum / self.samples
            return
        n = self.neutral
        # A mouth more closed / eyes more open than the neutral: it was learned while the
        # person talked or blinked; correct it quickly. Otherwise follow slowly, and only
        # while the face is near its neutral (a held expression never becomes neutral).
        fast = np.zeros(len(raw), bool)
        fast[2] = raw[2] < n[2]
        fast[:2] = raw[:2] > n[:2]
        near = raw[2] < n[2] + NEAR_GAP and (np.abs(raw[:2] / n[:2] - 1) < NEAR_EYE).all()
        rate = np.where(fast, 0.2, NEUTRAL_RATE if near else 0.0)
        # The closed mouth is the jaw's neutral: speech's small openings (near the neutral)
        # must not lift it, or the baseline wanders with the talking.
        rate[2] = min(rate[2], JAW_NEUTRAL_RISE) if not fast[2] else rate[2]
        if self._mouth_still(raw[2]) and raw[2] > n[2]:
            rate[2] = MOUTH_STILL_RATE
        self.neutral = n + rate * (raw - n)
        if near:
            self.neutral_pitch += NEUTRAL_RATE * (pitch - self.neutral_pitch)

    def _mouth_still(self, gap: float) -> bool:
        """Whether the lips' gap has rested (near its recent mean) for MOUTH_STILL_FRAMES."""
        near = abs(gap - self._gap_mean) < MOUTH_STILL
        self._gap_mean += 0.3 * (gap - self._gap_mean)
        self._still_frames = self._still_frames + 1 if near else 0
        return self._still_frames >= MOUTH_STILL_FRAMES

    def _values(self, raw: np.ndarray, pitch: float) -> np.ndarray:
        n = self.neutral
        narrowing = 1 - raw[:2] / np.maximum(n[:2], 1e-6)
        narrowing = narrowing - EYE_PER_PITCH * max(0.0, self.neutral_pitch - pitch - PITCH_FREE)
        eye = np.where(
            narrowing < 0,
            np.clip(narrowing * EYELID_GAIN, -0.3, 0.0),
            np.clip((narrowing - EYE_DEAD) / (EYE_FULL - EYE_DEAD), 0.0, 1.0),
        )
        width_n = max(n[3], 1e-6)
        return np.array([
            eye[0], eye[1],
            self._jaw(raw[2] - n[2]),
            _clip((raw[3] - n[3]) / width_n, -0.4, 0.5),
            _clip((raw[4] - n[4]) / width_n, -0.3, 0.4),
            _clip((raw[5] - n[5]) / width_n - UPPER_LIP_DEAD, 0.0, 0.08),
            _clip((raw[6] - n[6]) / width_n, -0.2, 0.3),
            _clip((raw[7] - n[7]) / width_n, -0.2, 0.3),
        ])  # fmt: skip

    def _jaw(self, opening: float) -> float:
        """The rig's jaw for an opening over the neutral (mouth widths), linear in it."""
        opening = max(opening, 0.0)
        self.jaw_range = max(JAW_RANGE_MIN, self.jaw_range * JAW_RANGE_DECAY, opening)
        return JAW_MAX * opening / self.jaw_range


def _clip(value: float, low: float, high: float) -> float:
    """``np.clip`` of one number, without numpy's call overhead."""
    return min(max(value, low), high)
