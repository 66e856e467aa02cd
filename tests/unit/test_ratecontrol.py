"""The loss-based rate controller (GCC-style), as pure functions."""

from media_engine.ratecontrol import (
    RatePolicy,
    RateState,
    loss_limited,
    on_remb,
    on_report,
    on_rtt,
    target,
)

POLICY = RatePolicy()


def test_heavy_loss_cuts_by_half_the_fraction_lost():
    state = on_report(RateState(loss_bps=1_000_000), 0.20, now=10.0)
    assert state.loss_bps == 900_000 and state.cuts == 1


def test_cuts_are_spaced_and_never_go_under_the_floor():
    state = on_report(RateState(loss_bps=1_000_000), 0.5, now=10.0)
    same = on_report(state, 0.5, now=10.1)
    assert same.loss_bps == state.loss_bps  # within 300 ms of the last cut
    for i in range(50):
        state = on_report(state, 0.9, now=11.0 + i)
    assert state.loss_bps == POLICY.min_bps


def test_low_loss_probes_up_once_a_second_to_the_ceiling():
    state = on_report(RateState(loss_bps=500_000), 0.0, now=0.0)
    assert state.loss_bps == 540_000
    assert on_report(state, 0.01, now=0.5).loss_bps == 540_000  # too soon
    for i in range(100):
        state = on_report(state, 0.0, now=1.0 + i)
    assert state.loss_bps == POLICY.max_bps


def test_moderate_loss_holds():
    state = RateState(loss_bps=800_000)
    assert on_report(state, 0.05, now=0.0).loss_bps == 800_000


def test_the_target_is_the_smaller_of_loss_based_rate_and_remb():
    state = RateState(loss_bps=800_000)
    assert target(state) == 800_000
    assert target(on_remb(state, 600_000)) == 600_000
    assert target(on_remb(state, 5_000_000)) == 800_000
    assert target(on_remb(RateState(loss_bps=5_000_000), 9e9)) == POLICY.max_bps


def test_pressure_is_a_loss_based_rate_under_the_start():
    assert not loss_limited(RateState(loss_bps=1_500_000), 1_500_000)
    assert loss_limited(on_report(RateState(loss_bps=1_500_000), 0.3, now=0.0), 1_500_000)


def test_a_round_trip_over_the_lowest_seen_cuts_and_holds_the_probe():
    state = on_rtt(RateState(loss_bps=1_000_000), 0.030, now=0.0)
    assert state.min_rtt_s == 0.030 and not state.queued and state.loss_bps == 1_000_000
    state = on_rtt(state, 0.090, now=1.0)  # +60 ms: no queue yet
    assert not state.queued and state.loss_bps == 1_000_000
    state = on_rtt(state, 0.280, now=2.0)  # +250 ms once: a busy receiver, or a queue
    assert not state.queued and state.loss_bps == 1_000_000
    state = on_rtt(state, 0.290, now=3.0)  # twice in a row: a standing queue
    assert state.queued and state.loss_bps == 850_000
    # no loss, but the queue is there: no probing up
    assert on_report(state, 0.0, now=5.0).loss_bps == 850_000
    state = on_rtt(state, 0.040, now=6.0)  # drained
    assert not state.queued
    assert on_report(state, 0.0, now=7.0).loss_bps == 850_000 * POLICY.increase
