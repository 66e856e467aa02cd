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


def on_report(
    state: RateState, fraction_lost: float, now: float, policy: RatePolicy = RatePolicy()
) -> RateState:
    """The state after one receiver report (``fraction_lost`` in 0..1)."""
    loss = min(1.0, max(0.0, fraction_lost))
    since = None if state.changed_at is None else now - state.changed_at
    state = replace(state, fraction_lost=loss)
    if loss > policy.high:
        if since is not None and since < policy.decrease_every_s:
            return state
        rate = max(policy.min_bps, state.loss_bps * (1.0 - 0.5 * loss))
        return replace(state, loss_bps=rate, changed_at=now, cuts=state.cuts + 1)
    if loss < policy.low:
        if state.queued or (since is not None and since < policy.increase_every_s):
            return state
        rate = min(policy.max_bps, state.loss_bps * policy.increase)
        return replace(state, loss_bps=rate, changed_at=now)
    return state


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
    state = replace(state, min_rtt_s=low, queued=queued, queued_reports=runs)
    since = None if state.changed_at is None else now - state.changed_at
    if not queued or (since is not None and since < policy.decrease_every_s):
        return state
    rate = max(policy.min_bps, state.loss_bps * policy.queue_cut)
    return replace(state, loss_bps=rate, changed_at=now, cuts=state.cuts + 1)


def on_remb(state: RateState, bps: float) -> RateState:
    """The state after a receiver estimate (REMB)."""
    return replace(state, remb_bps=float(bps))


def target(state: RateState, policy: RatePolicy = RatePolicy()) -> float:
    """What the encoder should aim at: the smaller of the loss-based rate and the REMB."""
    rate = state.loss_bps if state.remb_bps is None else min(state.loss_bps, state.remb_bps)
    return min(policy.max_bps, max(policy.min_bps, rate))


def loss_limited(state: RateState, start_bps: float) -> bool:
    """The loss-based rate has been cut below where the sender started: measured pressure."""
    return state.loss_bps < start_bps
