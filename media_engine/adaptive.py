"""Adaptive resolution: the processing size of one session moves along a ladder.

The pipeline reports each frame's stage times and the receiver's bandwidth estimate (REMB,
``media_engine/bandwidth.py``; None until the receiver has reported). A session starts at the
top rung and steps down a rung (720p -> 540p -> 360p) only on measured pressure: processing
that does not fit the frame budget, or a receiver estimate below what the current size needs
for about a second. It steps back up when there has been room for a while (hysteresis: a
higher bar and a longer wait to go up than to go down, and a pause after every move). It
keeps the current rung and why it last moved, for the session stats.

``decide`` is the whole policy as a pure function of (state, observation); the
``AdaptiveResolution`` class only holds the state between frames.
"""

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Rung:
    name: str
    width: int
    height: int
    min_bitrate_bps: float  # below this the encoder cannot carry the size well

    @property
    def pixels(self) -> int:
        return self.width * self.height


LADDER: tuple[Rung, ...] = (
    Rung("720p", 1280, 720, 1_200_000),
    Rung("540p", 960, 540, 700_000),
    Rung("360p", 640, 360, 0),
)


@dataclass(frozen=True)
class Policy:
    high: float = 0.85  # step down when smoothed processing > high × budget ...
    down_after: int = 3  # ... for this many frames in a row
    low: float = 0.55  # step up when the time predicted one rung up < low × budget ...
    up_after: int = 45  # ... for this many frames in a row
    cooldown: int = 30  # frames after a move before the next one
    # A receiver estimate below the rung's need steps down after this many frames in a row
    # (about a second at the camera's rate: one low report is not pressure).
    bitrate_down_after: int = 20
    bitrate_headroom: float = 1.25  # going up needs this × the upper rung's bitrate
    smoothing: float = 0.3  # weight of the newest frame time in the moving average


@dataclass(frozen=True)
class Observation:
    processing_ms: float  # this frame's pipeline time (all stages)
    budget_ms: float  # the frame interval (1000 / fps)
    bitrate_bps: float | None = None  # the receiver's estimate; None when unknown


@dataclass(frozen=True)
class AdaptiveState:
    rung: int = 0  # index into the ladder (0 = largest)
    smoothed_ms: float | None = None
    over: int = 0
    starved: int = 0  # frames in a row with the receiver's estimate below the rung's need
    room: int = 0
    since_move: int = 1 << 30
    moves: int = 0
    reason: str = "start at the top rung"


def decide(
    state: AdaptiveState,
    obs: Observation,
    ladder: tuple[Rung, ...] = LADDER,
    policy: Policy = Policy(),
) -> AdaptiveState:
    """The state after one more frame (pure)."""
    smoothed = (
        obs.processing_ms
        if state.smoothed_ms is None
        else state.smoothed_ms + policy.smoothing * (obs.processing_ms - state.smoothed_ms)
    )
    rung = ladder[state.rung]
    state = replace(state, smoothed_ms=smoothed, since_move=state.since_move + 1)
    can_move = state.since_move > policy.cooldown

    # Down: the measured bitrate cannot carry this size, or processing is too slow.
    if state.rung < len(ladder) - 1:
        low = obs.bitrate_bps is not None and obs.bitrate_bps < rung.min_bitrate_bps
        state = replace(state, starved=state.starved + 1 if low else 0)
        if state.starved >= policy.bitrate_down_after and can_move:
            return _move(
                state,
                +1,
                f"bitrate {obs.bitrate_bps / 1e6:.2f} Mb/s below {rung.name}'s "
                f"{rung.min_bitrate_bps / 1e6:.2f} Mb/s",
            )
        over = state.over + 1 if smoothed > policy.high * obs.budget_ms else 0
        state = replace(state, over=over)
        if over >= policy.down_after and can_move:
            return _move(
                state,
                +1,
                f"processing {smoothed:.1f} ms over {policy.high:.0%} of the "
                f"{obs.budget_ms:.1f} ms frame budget",
            )
    # Up: the time predicted one rung up fits well, and the bitrate carries it.
    if state.rung > 0:
        upper = ladder[state.rung - 1]
        predicted = smoothed * upper.pixels / rung.pixels
        bitrate_ok = (
            obs.bitrate_bps is None
            or obs.bitrate_bps >= upper.min_bitrate_bps * policy.bitrate_headroom
        )
        room = state.room + 1 if predicted < policy.low * obs.budget_ms and bitrate_ok else 0
        state = replace(state, room=room)
        if room >= policy.up_after and can_move:
            return _move(
                state,
                -1,
                f"room: {upper.name} predicted at {predicted:.1f} ms of the "
                f"{obs.budget_ms:.1f} ms frame budget",
            )
    return state


def _move(state: AdaptiveState, direction: int, reason: str) -> AdaptiveState:
    return replace(
        state,
        rung=state.rung + direction,
        over=0,
        starved=0,
        room=0,
        since_move=0,
        moves=state.moves + 1,
        reason=("down: " if direction > 0 else "up: ") + reason,
        # After a move the average no longer describes the new size.
        smoothed_ms=None,
    )


def processing_size(width: int, height: int, rung: Rung) -> tuple[int, int]:
    """The size a frame is processed at: scaled to the rung's height, never enlarged.

    Keeps the frame's aspect ratio; a scaled size has even dimensions (encoders need them).
    """
    if height <= rung.height:
        return width, height
    scale = rung.height / height
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


class AdaptiveResolution:
    """One session's controller: feed it every frame's times, read the rung it chose."""

    def __init__(self, ladder: tuple[Rung, ...] = LADDER, policy: Policy = Policy()) -> None:
        self.ladder = ladder
        self.policy = policy
        self.state = AdaptiveState()

    @property
    def rung(self) -> Rung:
        return self.ladder[self.state.rung]

    def observe(
        self, processing_ms: float, budget_ms: float, bitrate_bps: float | None = None
    ) -> Rung:
        self.state = decide(
            self.state, Observation(processing_ms, budget_ms, bitrate_bps), self.ladder, self.policy
        )
        return self.rung

    def size_limit(self) -> tuple[int, int]:
        """The current rung as the pipeline's processing-size limit."""
        return self.rung.width, self.rung.height

    def size_for(self, width: int, height: int) -> tuple[int, int]:
        return processing_size(width, height, self.rung)

    def stats(self) -> dict:
        return {
            "rung": self.rung.name,
            "width": self.rung.width,
            "height": self.rung.height,
            "reason": self.state.reason,
            "moves": self.state.moves,
            "smoothed_ms": None
            if self.state.smoothed_ms is None
            else round(self.state.smoothed_ms, 2),
        }
