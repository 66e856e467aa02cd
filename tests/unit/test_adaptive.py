"""Adaptive resolution: the pure policy, step by step."""

from media_engine.adaptive import (
    LADDER,
    AdaptiveResolution,
    AdaptiveState,
    Observation,
    Policy,
    decide,
    processing_size,
)

BUDGET = 1000 / 30


POLICY = Policy()


def run(state, ms, frames, bitrate=None, policy=POLICY):
    for _ in range(frames):
        state = decide(state, Observation(ms, BUDGET, bitrate), LADDER, policy)
    return state


def test_starts_at_the_top_and_stays_while_processing_fits():
    state = run(AdaptiveState(), 10.0, 200, bitrate=3e6)
    assert state.rung == 0 and state.moves == 0


def test_steps_down_when_processing_exceeds_the_budget_with_the_reason():
    state = run(AdaptiveState(), 40.0, 3)
    assert state.rung == 1
    assert state.reason.startswith("down: processing 40.0 ms")
    assert "33.3 ms frame budget" in state.reason


def test_one_slow_frame_does_not_move_it():
    state = run(AdaptiveState(), 10.0, 20)
    state = run(state, 60.0, 1)
    state = run(state, 10.0, 20)
    assert state.rung == 0


def test_waits_for_the_cooldown_between_moves():
    policy = Policy()
    state = run(AdaptiveState(), 40.0, 3)
    assert state.rung == 1
    state = run(state, 40.0, policy.cooldown)
    assert state.rung == 1
    state = run(state, 40.0, 3)
    assert state.rung == 2
    # The bottom rung is the floor.
    state = run(state, 80.0, 200)
    assert state.rung == 2


def test_steps_down_when_the_receivers_estimate_stays_below_the_sizes_need():
    policy = Policy()
    almost = run(AdaptiveState(), 5.0, policy.bitrate_down_after - 1, bitrate=500_000)
    assert almost.rung == 0  # one low report is not pressure
    state = run(almost, 5.0, 1, bitrate=500_000)
    assert state.rung == 1
    assert state.reason == "down: bitrate 0.50 Mb/s below 720p's 1.20 Mb/s"


def test_a_short_dip_in_the_estimate_does_not_move_it():
    state = AdaptiveState()
    for _ in range(10):
        state = run(state, 5.0, Policy().bitrate_down_after - 1, bitrate=600_000)
        state = run(state, 5.0, 1, bitrate=2_000_000)
    assert state.rung == 0 and state.moves == 0


def test_picks_720p_for_a_lans_estimate():
    # A LAN: the kiosk's REMB climbs to several Mb/s (aiortc's own estimator reports up to
    # 1.5 x what arrives); processing fits. From the start it stays at 720p...
    lan = 2_400_000
    state = run(AdaptiveState(), 8.0, 600, bitrate=lan)
    assert LADDER[state.rung].name == "720p" and state.moves == 0
    # ...and before the receiver's first report (no estimate) it does not step down either.
    assert LADDER[run(AdaptiveState(), 8.0, 600, bitrate=None).rung].name == "720p"
    # After real pressure has passed, a LAN's estimate brings it back to 720p.
    low = run(AdaptiveState(), 5.0, 200, bitrate=300_000)
    assert LADDER[low.rung].name == "360p"
    back = run(low, 5.0, 200, bitrate=lan)
    assert LADDER[back.rung].name == "720p"


def test_back_up_only_after_sustained_room_and_enough_bitrate():
    policy = Policy()
    state = run(AdaptiveState(), 40.0, 3)  # down to 540p
    # 540p at 8 ms predicts 720p at 8 × 1.78 = 14.2 ms < 0.55 × 33.3: room.
    almost = run(state, 8.0, policy.up_after - 1, bitrate=3e6)
    assert almost.rung == 1
    up = run(almost, 8.0, 1, bitrate=3e6)
    assert up.rung == 0
    assert up.reason.startswith("up: room: 720p predicted at")
    # Not enough bitrate for 720p with headroom: stays down.
    held = run(state, 8.0, 500, bitrate=1_300_000)
    assert held.rung == 1


def test_hysteresis_no_oscillation_between_thresholds():
    # 540p at 12 ms predicts 21 ms at 720p (> 0.55 × budget: no room), while 12 ms at 540p
    # is well under the down threshold: it stays where it is.
    state = run(AdaptiveState(), 40.0, 3)
    state = run(state, 12.0, 1000, bitrate=3e6)
    assert state.rung == 1 and state.moves == 1


def test_processing_size_keeps_aspect_and_never_enlarges():
    assert processing_size(1280, 720, LADDER[1]) == (960, 540)
    assert processing_size(1280, 720, LADDER[2]) == (640, 360)
    assert processing_size(640, 480, LADDER[0]) == (640, 480)
    assert processing_size(640, 480, LADDER[2]) == (480, 360)
    assert processing_size(3840, 2160, LADDER[0]) == (1280, 720)
    assert processing_size(641, 481, LADDER[2]) == (480, 360)


def test_controller_reports_rung_and_reason_for_the_stats():
    controller = AdaptiveResolution()
    for _ in range(3):
        controller.observe(45.0, BUDGET, 3e6)
    stats = controller.stats()
    assert stats["rung"] == "540p" and stats["moves"] == 1
    assert stats["reason"].startswith("down: processing")
    assert controller.size_for(1280, 720) == (960, 540)
