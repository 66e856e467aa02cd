"""The loss-based rate controller (GCC-style), as pure functions."""

import pytest

from media_engine.ratecontrol import (
    RatePolicy,
    RateState,
    calm,
    loss_limited,
    on_remb,
    on_report,
    on_rtt,
    ramping,
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


def test_a_new_call_ramps_up_on_clean_reports_and_reaches_the_ceiling():
    state = ramping(700_000)
    assert target(state) == 700_000 and state.ramping
    state = on_report(state, 0.0, now=1.0)  # the first clean report only starts the clock
    assert state.loss_bps == 700_000
    assert on_report(state, 0.0, now=1.2).loss_bps == 700_000  # too soon
    state = on_report(state, 0.0, now=2.0)
    assert state.loss_bps == 700_000 * POLICY.ramp_step and state.ramping
    for i in range(10):
        state = on_report(state, 0.0, now=3.0 + i)
        if not state.ramping:
            break
    assert state.loss_bps == POLICY.max_bps and state.ramp_steps == 4 and i == 2  # 5 reports
    assert state.cuts == 0 and not loss_limited(state, POLICY.max_bps)


def test_loss_ends_the_ramp_one_step_back_and_holds_without_pressure():
    state = on_report(on_report(ramping(700_000), 0.0, now=1.0), 0.0, now=2.0)
    state = on_report(state, 0.05, now=3.0)  # 5 %: the ramp is over, the step taken back
    back = 700_000 * POLICY.queue_cut  # and what it queued drained
    assert not state.ramping and state.loss_bps == pytest.approx(back)
    assert on_report(state, 0.0, now=3.5).loss_bps == state.loss_bps  # the usual spacing
    assert on_report(state, 0.0, now=4.0).loss_bps == pytest.approx(back * POLICY.increase)
    # a report of loss before any step: no step to take back
    assert on_report(ramping(700_000), 0.05, now=1.0).loss_bps == 700_000
    # no cut: no pressure for the ladder (a LAN's spurious loss must not step it down)
    assert not loss_limited(state, 1_500_000)
    # heavy loss at once: the ramp ends and the cut is taken from there
    heavy = on_report(ramping(700_000), 0.3, now=1.0)
    assert heavy.loss_bps == pytest.approx(700_000 * 0.85) and loss_limited(heavy, 1_500_000)


def test_the_first_sign_of_a_queue_ends_the_ramp():
    state = on_rtt(ramping(700_000), 0.030, now=0.5)
    state = on_report(on_report(state, 0.0, now=1.0), 0.0, now=2.0)
    assert state.ramping and state.loss_bps == 700_000 * POLICY.ramp_step
    state = on_rtt(state, 0.070, now=2.5)  # +40 ms: not yet
    assert state.ramping
    state = on_rtt(state, 0.090, now=3.0)  # +60 ms once: a queue is building up
    assert not state.ramping and state.loss_bps == pytest.approx(700_000 * POLICY.queue_cut)
    assert on_report(state, 0.0, now=3.1).loss_bps == state.loss_bps  # no ramp step any more


def test_the_probe_is_slow_near_the_rate_of_the_last_cut():
    state = on_report(RateState(loss_bps=1_000_000), 0.15, now=0.0)  # cut from 1 Mb/s
    assert state.loss_bps == pytest.approx(925_000) and state.ceiling_bps == 1_000_000
    state = on_report(state, 0.0, now=1.0)  # within 10 % of it: +2 %
    assert state.loss_bps == pytest.approx(925_000 * POLICY.increase_near)
    far = on_report(RateState(loss_bps=500_000, ceiling_bps=1_000_000), 0.0, now=0.0)
    assert far.loss_bps == 500_000 * POLICY.increase


def test_the_path_is_calm_without_queue_heavy_loss_or_a_recent_cut():
    assert calm(RateState(loss_bps=1e6, fraction_lost=0.05), now=0.0)
    assert not calm(RateState(loss_bps=1e6, fraction_lost=0.2), now=0.0)
    assert not calm(RateState(loss_bps=1e6, queued=True), now=0.0)
    cut = on_report(RateState(loss_bps=1e6), 0.2, now=10.0)
    cut = on_report(cut, 0.0, now=11.0)  # a probe later: still a recent cut
    assert not calm(cut, now=11.0) and calm(cut, now=10.0 + POLICY.calm_after_s)


def test_one_round_trip_over_the_lowest_holds_the_probe_without_a_cut():
    state = on_rtt(RateState(loss_bps=800_000), 0.030, now=0.0)
    state = on_rtt(state, 0.090, now=1.0)  # +60 ms: a queue begins
    assert state.rising and not state.queued
    assert on_report(state, 0.0, now=2.0).loss_bps == 800_000  # held, not cut
    state = on_rtt(state, 0.035, now=2.5)
    assert on_report(state, 0.0, now=3.0).loss_bps == 800_000 * POLICY.increase


def test_a_queue_that_begins_after_a_probe_step_takes_the_step_back():
    state = on_rtt(RateState(loss_bps=800_000), 0.030, now=0.0)
    state = on_report(state, 0.0, now=1.0)
    assert state.loss_bps == 800_000 * POLICY.increase
    state = on_rtt(state, 0.090, now=1.5)  # +60 ms right after the step
    assert state.loss_bps == 800_000 and state.cuts == 0
    assert on_rtt(state, 0.095, now=2.0).loss_bps == 800_000  # once, not again
