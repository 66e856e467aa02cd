"""media_engine.events.emit: known events, plain details only (never frame data)."""

import logging

import numpy as np
import pytest

from media_engine import events


def test_an_event_is_logged_with_its_details(caplog):
    with caplog.at_level(logging.INFO, logger="media_engine.events"):
        events.emit("session.ended", session_id="s1", kiosk="k1", reason="bye", frames_out=3)
    assert "session.ended session=s1 kiosk=k1 frames_out=3 reason=bye" in caplog.text


def test_unknown_events_are_refused():
    with pytest.raises(ValueError, match=r"unknown media event 'session\.exploded'"):
        events.emit("session.exploded", session_id="s1", kiosk="k1")


@pytest.mark.parametrize(
    "value", [np.zeros((4, 4, 3), np.uint8), b"\x00\x01", {"landmarks": [1, 2]}, [np.float32(1)]]
)
def test_frame_or_landmark_data_is_refused(value):
    with pytest.raises(TypeError, match="plain value"):
        events.emit("session.error", session_id="s1", kiosk="k1", data=value)
