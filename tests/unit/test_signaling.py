"""The browser protocol's rules (kiosk.signaling), one by one."""

import json

import pytest

from kiosk import signaling
from kiosk.signaling import SignalingError, parse_client_message

VIDEO_OFFER = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\n"
)
AUDIO_ONLY_OFFER = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n"
)


def frame(**fields) -> str:
    return json.dumps(fields)


def code_of(text) -> str:
    with pytest.raises(SignalingError) as caught:
        parse_client_message(text)
    assert caught.value.message  # every error says something a person can read
    return caught.value.code


def test_consent_agree_and_decline():
    agreed = parse_client_message(frame(type="consent", given=True, language="zh-hans"))
    assert agreed == signaling.Consent(given=True, language="zh-hans")
    declined = parse_client_message(
        frame(type="consent", given=False, language="en", text_sha256="a" * 64)
    )
    assert declined == signaling.Consent(given=False, language="en", text_sha256="a" * 64)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"language": "en"}, "missing_field"),
        ({"given": "yes", "language": "en"}, "bad_field"),
        ({"given": 1, "language": "en"}, "bad_field"),
        ({"given": True}, "missing_field"),
        ({"given": True, "language": "fr"}, "bad_field"),
        ({"given": True, "language": "en", "text_sha256": "xyz"}, "bad_field"),
    ],
)
def test_consent_faults(fields, code):
    assert code_of(frame(type="consent", **fields)) == code


def test_offer_with_video():
    assert parse_client_message(frame(type="offer", sdp=VIDEO_OFFER)).sdp == VIDEO_OFFER
    assert parse_client_message(frame(type="offer", sdp=VIDEO_OFFER, sdp_type="offer"))


def test_offer_without_video_is_refused():
    assert code_of(frame(type="offer", sdp=AUDIO_ONLY_OFFER)) == "no_video"
    rejected_video = VIDEO_OFFER.replace("m=video 9 ", "m=video 0 ")
    assert code_of(frame(type="offer", sdp=rejected_video)) == "no_video"


def test_offer_sdp_over_the_limit():
    big = VIDEO_OFFER + "a=x-pad:" + "p" * signaling.MAX_SDP_BYTES + "\r\n"
    assert len(frame(type="offer", sdp=big)) < signaling.MAX_MESSAGE_BYTES
    assert code_of(frame(type="offer", sdp=big)) == "sdp_too_large"


def test_sdp_limit_counts_utf8_bytes():
    # 22k three-byte characters: 66 KB of UTF-8 in a 22k-character string.
    big = VIDEO_OFFER + "a=x-pad:" + "合" * 22_000 + "\r\n"
    assert code_of(json.dumps({"type": "offer", "sdp": big}, ensure_ascii=False)) == (
        "sdp_too_large"
    )


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({}, "missing_field"),
        ({"sdp": 5}, "bad_field"),
        ({"sdp": "hello"}, "bad_sdp"),
        ({"sdp": VIDEO_OFFER, "sdp_type": "answer"}, "bad_field"),
    ],
)
def test_offer_faults(fields, code):
    assert code_of(frame(type="offer", **fields)) == code


def test_whole_message_over_the_limit():
    text = frame(type="stats", pad="x" * signaling.MAX_MESSAGE_BYTES)
    assert code_of(text) == "message_too_large"
    assert code_of(text.encode()) == "message_too_large"


@pytest.mark.parametrize("text", ["{", "not json", '{"type": "offer",}', "[1,", ""])
def test_malformed_json(text):
    assert code_of(text) == "bad_json"


@pytest.mark.parametrize("text", ["[]", "42", '"offer"', "null", '{"sdp": "x"}', '{"type": 3}'])
def test_not_a_typed_object(text):
    assert code_of(text) == "bad_message"


def test_binary_frames_are_refused():
    assert code_of(b'{"type": "bye"}') == "bad_message"
    assert code_of(None) == "bad_message"


def test_unknown_type_names_the_known_ones():
    with pytest.raises(SignalingError) as caught:
        parse_client_message(frame(type="subscribe"))
    assert caught.value.code == "unknown_type"
    assert "offer" in caught.value.message and "subscribe" in caught.value.message


def test_candidate_and_end_of_candidates():
    init = {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host", "sdpMid": "0"}
    parsed = parse_client_message(frame(type="candidate", candidate=init))
    assert parsed.candidate == {**init, "sdpMLineIndex": None}
    assert parse_client_message(frame(type="candidate", candidate=None)).candidate is None


@pytest.mark.parametrize(
    "candidate",
    [
        "candidate:1 1 udp 1 127.0.0.1 5000 typ host",
        {"sdpMid": "0"},
        {"candidate": "rm -rf /", "sdpMid": "0"},
        {"candidate": "candidate:1", "sdpMid": 0},
        {"candidate": "candidate:1", "sdpMLineIndex": -1},
        {"candidate": "candidate:1", "sdpMLineIndex": True},
        {"candidate": "candidate:1"},
        {"candidate": "candidate:" + "1" * 2000, "sdpMid": "0"},
    ],
)
def test_candidate_faults(candidate):
    assert code_of(frame(type="candidate", candidate=candidate)) in ("bad_field", "missing_field")


def test_candidate_field_is_required():
    assert code_of(frame(type="candidate")) == "missing_field"


def test_bye():
    assert parse_client_message(frame(type="bye")) == signaling.Bye()
    assert parse_client_message(frame(type="bye", reason="page closed")).reason == "page closed"
    assert code_of(frame(type="bye", reason=7)) == "bad_field"
    assert code_of(frame(type="bye", reason="x" * 1000)) == "bad_field"


def test_stats():
    parsed = parse_client_message(frame(type="stats", loop_ms=35.5, fps=29, frames_decoded=300))
    assert parsed.loop_ms == 35.5
    assert parsed.as_dict() == {"loop_ms": 35.5, "fps": 29.0, "frames_decoded": 300.0}
    assert parse_client_message(frame(type="stats", loop_ms=None)).loop_ms is None


@pytest.mark.parametrize(
    "fields",
    [
        {"loop_ms": "fast"},
        {"loop_ms": -1},
        {"loop_ms": 1e12},
        {"loop_ms": True},
        {"Bad-Name": 1},
        {"fps": [1]},
        {f"f{i}": i for i in range(signaling.MAX_STATS_FIELDS + 1)},
    ],
)
def test_stats_faults(fields):
    assert code_of(frame(type="stats", **fields)) == "bad_field"


def test_non_finite_numbers_are_refused():
    assert code_of('{"type": "stats", "loop_ms": NaN}') == "bad_field"
    assert code_of('{"type": "stats", "loop_ms": Infinity}') == "bad_field"


def test_deeply_nested_json_is_a_clear_error():
    assert code_of("[" * 100_000) in ("bad_json", "message_too_large")
    assert code_of("[" * 50_000 + "]" * 50_000) == "bad_json"


def test_server_messages():
    hello = signaling.hello(
        kiosk={"slug": "demo"}, ice_servers=[{"urls": "stun:x"}], consent_texts=[]
    )
    assert hello["type"] == "hello" and hello["protocol"] == signaling.PROTOCOL_VERSION
    assert hello["limits"]["max_sdp_bytes"] == signaling.MAX_SDP_BYTES
    assert signaling.error("busy") == {
        "type": "error",
        "code": "busy",
        "message": signaling.ERROR_CODES["busy"],
    }
    assert signaling.state("live")["state"] == "live"
    assert json.loads(signaling.encode(signaling.ended("bye"))) == {
        "type": "ended",
        "reason": "bye",
        "detail": "",
    }
    with pytest.raises(ValueError):
        signaling.state("dancing")
    with pytest.raises(ValueError):
        signaling.error("no_such_code")


def test_every_end_reason_maps_to_a_page_state():
    from consent.models import EndReason

    for reason in EndReason.values:
        assert signaling.state_after_end(reason) in signaling.STATES
    assert signaling.state_after_end("busy") == "busy"
    assert signaling.state_after_end("ice_failed") == "failed"
    assert signaling.state_after_end("bye") == "stopped"


def test_worker_states_are_page_states():
    from media_engine.protocol import SESSION_STATES

    assert set(SESSION_STATES) <= set(signaling.STATES)
