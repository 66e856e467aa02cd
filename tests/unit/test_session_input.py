"""What a session accepts from the offer and the kiosk: ICE servers and trickled candidates."""

import pytest

from media_engine.session import SessionRefused, ice_servers_from, remote_candidate

LINE = "candidate:1 1 UDP 2122252543 127.0.0.1 50000 typ host"


def test_a_trickled_candidate_is_parsed():
    candidate = remote_candidate({"candidate": LINE, "sdpMid": "0", "sdpMLineIndex": 0})
    assert (candidate.ip, candidate.port, candidate.type) == ("127.0.0.1", 50000, "host")
    assert (candidate.sdpMid, candidate.sdpMLineIndex) == ("0", 0)


def test_an_empty_candidate_ends_the_candidates():
    assert remote_candidate({"candidate": "", "sdpMid": "0"}) is None


@pytest.mark.parametrize(
    "init, message",
    [
        ("candidate:1 1 UDP 1 1.2.3.4 5 typ host", "RTCIceCandidateInit object"),
        ({"candidate": "candidate:garbage", "sdpMid": "0"}, "unreadable ICE candidate"),
        ({"candidate": LINE}, "sdpMid or sdpMLineIndex"),
    ],
)
def test_bad_candidates_get_a_clear_error(init, message):
    with pytest.raises(ValueError, match=message):
        remote_candidate(init)


def test_ice_servers_come_from_the_offer_or_the_settings(settings):
    settings.ICE_SERVERS = [{"urls": "stun:stun.example.org:3478"}]
    assert [s.urls for s in ice_servers_from(None)] == ["stun:stun.example.org:3478"]
    servers = ice_servers_from(
        [{"urls": ["turn:turn.example.org"], "username": "u", "credential": "c"}]
    )
    assert (servers[0].urls, servers[0].username, servers[0].credential) == (
        ["turn:turn.example.org"],
        "u",
        "c",
    )


@pytest.mark.parametrize("raw", ["stun:x", [{"username": "u"}], [42]])
def test_bad_ice_servers_refuse_the_offer(raw):
    with pytest.raises(SessionRefused) as refused:
        ice_servers_from(raw)
    assert refused.value.code == "bad_offer"
