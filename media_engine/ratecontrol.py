"""The sender's target bitrate: a loss-based controller combined with the receiver's REMB.

aiortc 1.16's sender only copies the receiver's REMB into its encoder. REMB is delay-based:
it answers a growing queue, but a bottleneck with a full drop-tail buffer shows a *constant*
delay (no gradient) while it drops a large share of what we send, so a delay-based estimate
alone keeps the rate over the link's capacity. Google Congestion Control (libwebrtc's
``SendSideBandwidthEstimation``) adds a loss-based rate from the receiver reports' fraction
lost, and sends at the smaller of the two:

- fraction lost over ``high`` (10 %): cut to ``rate × (1 − 0.5 × loss)``, at most once per
  ``decrease_every_s`` (300 ms, one report's worth);
- under ``low`` (2 %): probe up by ``increase`` (8 %), at most once per ``increase_every_s``
  (1 s);
- in between: hold.

The delay-based half of GCC is the receiver's REMB, but aiortc's estimator (the test kiosk's)
misses a standing queue, so the sender also watches the round trip from the receiver
reports (LSR/DLSR): a round trip ``queue_ms`` (100 ms) over the lowest seen, in two reports
in a row, means a queue is building at the bottleneck, and the rate is cut to
``queue_cut`` (0.85, GCC's overuse factor) of itself and not probed up while it lasts
(``on_rtt``).

A new call starts with a *ramp* (slow start, ``ramping``) instead of at the LAN's rate:
from the start rate, the rate multiplies by ``ramp_step`` (1.25) at each receiver report that
shows no loss (under ``low``) and no queue (a round trip under ``ramp_queue_ms``, 50 ms,
over the lowest seen), at most every ``ramp_every_s`` (the first clean report only starts
the clock); the first report that shows loss or a queue ends the ramp for good, one step
back and × ``queue_cut`` (it drains what the step queued), and the controller goes on from
there. A LAN reaches 1.5 Mb/s from 0.7 in five
reports (the step is small because the report that shows a step's excess comes up to a
second later, with the bottleneck's buffer filled by it); a 1 Mb/s link is not flooded
by a 1.5 Mb/s start (its 0.25 s drop-tail buffer filled, keyframes dropped, before loss
or the round trip could say so), and a lossy link keeps fewer packets per frame (fewer
frames to repair).

A single round trip ``ramp_queue_ms`` over the lowest (``rising``) already holds the
probe and takes back its latest step (a queue begins), without a cut. After a cut, the
rate that was cut is remembered (``ceiling_bps``): near it (within ``near`` of it) the
probe goes up by ``increase_near`` (2 %) instead of 8 %, so the sender does not refill
the bottleneck's buffer as fast as it drained it.

``on_report`` and ``target`` are pure functions of (state, report); ``media_engine/
bandwidth.py`` feeds them from the sender's RTCP and applies ``target`` to the encoder.
"""

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class RatePolicy:
    low: float = 0.02  # fraction lost under this: probe up
    high: float = 0.10  # over this: cut
    increase: float = 1.08
    decrease_every_s: float = 0.3
    increase_every_s: float = 1.0
    min_bps: float = 250_000  # aiortc's VP8 floor
    queue_ms: float = 100.0  # a round trip this far over the lowest seen: a queue
    queue_cut: float = 0.85
    queue_reports: int = 2  # ... in this many reports in a row
    max_bps: float = 1_500_000  # VP8's ceiling in aiortc
    ramp_step: float = 1.25  # the ramp: × this per clean report ...
    ramp_every_s: float = 0.4  # ... at most this often
    ramp_queue_ms: float = 50.0  # a round trip this far over the lowest ends the ramp
    increase_near: float = 1.02  # the probe's step near the rate of the last cut
    near: float = 0.1  # "near": within this share of it
    calm_after_s: float = 3.0  # a cut this recent: the path is congested (see ``calm``)


@dataclass(frozen=True)
class RateState:
    loss_bps: float  # the loss-based rate
    remb_bps: float | None = None  # the receiver's latest estimate (delay-based)
    changed_at: float | None = None  # when the loss-based rate last moved
    fraction_lost: float = 0.0  # the latest report's, 0..1
    cuts: int = 0
    min_rtt_s: float | None = None  # the lowest round trip seen: the path without a queue
    queued: bool = False  # the latest round trips say a queue is building
    queued_reports: int = 0  # reports in a row with the round trip over the lowest
    rising: bool = False  # the latest round trip is ``ramp_queue_ms`` over: no probing up
    probed_from: float | None = None  # the rate before the latest probe step
    ramping: bool = False  # the call's ramp (slow start) is still on
    ramp_at: float | None = None  # when the ramp last stepped up (or its clock started)
    ramp_steps: int = 0
    ceiling_bps: float | None = None  # the rate the latest cut was made from
    cut_at: float | None = None  # when the latest cut was made


def on_report(
    state: RateState, fraction_lost: float, now: float, policy: RatePolicy = RatePolicy()
) -> RateState:
    """The state after one receiver report (``fraction_lost`` in 0..1)."""
    loss = min(1.0, max(0.0, fraction_lost))
    state = replace(state, fraction_lost=loss)
    since = None if state.changed_at is None else now - state.changed_at
    if state.ramping:
        if loss < policy.low and not state.queued:
            return _ramp_up(state, now, policy)
        state = end_ramp(state, now, policy)  # (a cut may follow at once)
    if loss > policy.high:
        if since is not None and since < policy.decrease_every_s:
            return state
        return _cut(state, 1.0 - 0.5 * loss, now, policy)
    if loss < policy.low:
        waiting = since is not None and since < policy.increase_every_s
        if state.queued or state.rising or waiting:
            return state
        rate = min(policy.max_bps, state.loss_bps * _increase(state, policy))
        return replace(state, loss_bps=rate, changed_at=now, probed_from=state.loss_bps)
    return state


def ramping(start_bps: float) -> RateState:
    """A new call's state: the ramp from ``start_bps``."""
    return RateState(loss_bps=float(start_bps), ramping=True)


def end_ramp(state: RateState, now: float, policy: RatePolicy = RatePolicy()) -> RateState:
    """The ramp is over: the controller goes on from under its last step (a step that was
    followed by loss or a queue is taken back, and ``queue_cut`` drains what it queued: the
    report that shows it comes up to a second late)."""
    if not state.ramping:
        return state
    back = policy.queue_cut / policy.ramp_step
    rate = state.loss_bps * back if state.ramp_steps else state.loss_bps
    return replace(state, loss_bps=max(policy.min_bps, rate), ramping=False, changed_at=now)


def _ramp_up(state: RateState, now: float, policy: RatePolicy) -> RateState:
    """One clean report: the first starts the ramp's clock (it may describe the time
    before the call's media settled), each later one ``ramp_every_s`` apart steps up."""
    if state.ramp_at is None:
        return replace(state, ramp_at=now)
    if now - state.ramp_at < policy.ramp_every_s:
        return state
    rate = min(policy.max_bps, state.loss_bps * policy.ramp_step)
    return replace(
        state,
        loss_bps=rate,
        ramp_at=now,
        ramp_steps=state.ramp_steps + 1,
        ramping=rate < policy.max_bps,
    )


def _cut(state: RateState, factor: float, now: float, policy: RatePolicy) -> RateState:
    rate = max(policy.min_bps, state.loss_bps * factor)
    return replace(
        state,
        loss_bps=rate,
        changed_at=now,
        cut_at=now,
        cuts=state.cuts + 1,
        ceiling_bps=state.loss_bps,
    )


def _increase(state: RateState, policy: RatePolicy) -> float:
    """The probe's step: small near the rate the last cut was made from."""
    ceiling = state.ceiling_bps
    if ceiling is not None and abs(state.loss_bps - ceiling) <= policy.near * ceiling:
        return policy.increase_near
    return policy.increase


def on_rtt(
    state: RateState, rtt_s: float, now: float, policy: RatePolicy = RatePolicy()
) -> RateState:
    """The state after a round-trip measurement: cut while a queue builds up."""
    if rtt_s <= 0:
        return state
    low = rtt_s if state.min_rtt_s is None else min(state.min_rtt_s, rtt_s)
    over = (rtt_s - low) * 1000.0 > policy.queue_ms
    runs = state.queued_reports + 1 if over else 0
    # one late report is a busy receiver as often as a queue: it takes two in a row
    queued = runs >= policy.queue_reports
    rising = (rtt_s - low) * 1000.0 > policy.ramp_queue_ms
    state = replace(state, min_rtt_s=low, queued=queued, queued_reports=runs, rising=rising)
    if state.ramping and rising:
        state = end_ramp(state, now, policy)  # the first sign of a queue ends the ramp
    elif rising and state.probed_from is not None:  # ... and takes back the last probe
        state = replace(state, loss_bps=state.probed_from, changed_at=now)
    if rising or state.queued:
        state = replace(state, probed_from=None)
    since = None if state.changed_at is None else now - state.changed_at
    if not queued or (since is not None and since < policy.decrease_every_s):
        return state
    return _cut(state, policy.queue_cut, now, policy)


def on_remb(state: RateState, bps: float) -> RateState:
    """The state after a receiver estimate (REMB)."""
    return replace(state, remb_bps=float(bps))


def target(state: RateState, policy: RatePolicy = RatePolicy()) -> float:
    """What the encoder should aim at: the smaller of the loss-based rate and the REMB."""
    rate = state.loss_bps if state.remb_bps is None else min(state.loss_bps, state.remb_bps)
    return min(policy.max_bps, max(policy.min_bps, rate))


def calm(state: RateState, now: float, policy: RatePolicy = RatePolicy()) -> bool:
    """The path is not congested: no queue, the latest loss not over ``high``, and no cut
    in the last ``calm_after_s`` (loss here is the path's, not our own excess)."""
    recent_cut = state.cut_at is not None and now - state.cut_at < policy.calm_after_s
    return not state.queued and state.fraction_lost <= policy.high and not recent_cut


def loss_limited(state: RateState, start_bps: float) -> bool:
    """Loss or a queue has cut the loss-based rate below ``start_bps`` (the LAN's rate):
    measured pressure. A ramp still climbing, or one that ended under it, is no pressure."""
    return state.cuts > 0 and state.loss_bps < start_bps
