"""The admission rule and the load figure (pure functions) and bad capacity settings."""

import pytest

from media_engine import capacity


def test_an_idle_worker_takes_one_session_whatever_its_load():
    assert capacity.admits(sessions=0, max_sessions=4, load=0.9, limit=0.5, draining=False)


def test_the_next_session_must_fit_under_the_limit():
    # two sessions use 0.4: a third would cost 0.2 more
    assert capacity.admits(sessions=2, max_sessions=8, load=0.4, limit=0.6, draining=False)
    assert not capacity.admits(sessions=2, max_sessions=8, load=0.41, limit=0.6, draining=False)


def test_max_sessions_and_draining_always_refuse():
    assert not capacity.admits(sessions=4, max_sessions=4, load=0.0, limit=1.0, draining=False)
    assert not capacity.admits(sessions=0, max_sessions=4, load=0.0, limit=1.0, draining=True)


def test_measure_counts_frame_time_against_the_cores():
    # two sessions of 16.7 ms per 33.3 ms frame on 2 cores: half the machine
    load = capacity.measure(
        worker="w",
        frame_ms=[16.67, 16.67],
        pending=0,
        max_sessions=8,
        cpu=0.2,
        cores=2,
        draining=False,
        limit=0.7,
    )
    assert load.load == pytest.approx(0.5, abs=0.01)
    assert load.headroom == pytest.approx(0.2, abs=0.01)
    assert not load.accepting  # a third (0.25 more) would pass 0.7
    # CPU higher than the frame time says: the CPU figure counts
    busy = capacity.measure(
        worker="w", frame_ms=[5.0], pending=0, max_sessions=8, cpu=0.7, cores=2,
        draining=False, limit=0.85,
    )  # fmt: skip
    assert busy.load == 0.7 and not busy.accepting


def test_an_idle_worker_reports_no_load_from_its_own_housekeeping():
    idle = capacity.measure(
        worker="w", frame_ms=[], pending=0, max_sessions=2, cpu=0.3, cores=2,
        draining=False, limit=0.85,
    )  # fmt: skip
    assert idle.load == 0 and idle.accepting and idle.sessions == 0


@pytest.mark.parametrize("raw", ["lots", "0", "-1", "65"])
def test_a_bad_max_load_is_a_clear_error(monkeypatch, raw):
    monkeypatch.setenv("MEDIA_ENGINE_MAX_LOAD", raw)
    with pytest.raises(capacity.CapacitySettingError, match="MEDIA_ENGINE_MAX_LOAD"):
        capacity.max_load()
