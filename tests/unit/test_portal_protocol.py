"""The portal's socket rules (kiosk/portal/protocol.py): every bad input has its code."""

import json

import pytest

from kiosk.portal import protocol as p

CALL = "0b5e5f1c-8d2f-4c55-9d2a-2b1f4f0e9a11"


def parse(message, parsers=p.CUSTOMER_PARSERS):
    raw = message if isinstance(message, str | bytes) else json.dumps(message)
    return p.parse(raw, parsers)


def test_a_join_is_read_with_its_consent_choice():
    join = parse({"type": "join", "service": "cards", "language": "zh-hans", "blur": True})
    assert join == p.Join(service="cards", language="zh-hans", text_sha256="", blur=True)


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (b"{}", "bad_message"),
        ("not json", "bad_json"),
        ([1], "bad_message"),
        ({"type": "dance"}, "unknown_type"),
        ({"type": "join", "service": "loans", "language": "en"}, "unknown_service"),
        ({"type": "join", "service": "cards"}, "missing_field"),
        ({"type": "join", "service": "cards", "language": "fr"}, "bad_field"),
        ({"type": "join", "service": "cards", "language": "en", "blur": "yes"}, "bad_field"),
        ({"type": "join", "service": "cards", "language": "en", "text_sha256": "AB"}, "bad_field"),
        ({"type": "resume", "call_id": "nope"}, "bad_field"),
        ({"type": "offer", "sdp": "hello"}, "bad_sdp"),
        ({"type": "offer", "sdp": "v=0\r\nm=audio 9 UDP 0\r\n"}, "no_video"),
        ({"type": "bye", "reason": "x" * 201}, "bad_field"),
        ("x" * (p.signaling.MAX_MESSAGE_BYTES + 1), "message_too_large"),
    ],
)
def test_bad_customer_messages_get_stable_codes(message, code):
    with pytest.raises(p.PortalProtocolError) as refused:
        parse(message)
    assert refused.value.code == code


def test_the_agent_accepts_a_call_or_the_longest_waiting_of_a_service():
    assert parse({"type": "accept", "call_id": CALL}, p.AGENT_PARSERS) == p.Accept(CALL, None)
    assert parse({"type": "accept", "service": "accounts"}, p.AGENT_PARSERS) == p.Accept(
        None, "accounts"
    )
    with pytest.raises(p.PortalProtocolError):
        parse({"type": "supervisor", "allowed": 1}, p.AGENT_PARSERS)
    with pytest.raises(p.PortalProtocolError) as refused:
        parse({"type": "join"}, p.AGENT_PARSERS)  # a customer's message on the agent's socket
    assert refused.value.code == "unknown_type"


def test_errors_are_only_the_documented_codes():
    assert p.error("queue_empty")["code"] == "queue_empty"
    with pytest.raises(ValueError):
        p.error("no_such_code")


@pytest.mark.parametrize(
    "frame",
    [
        None,
        b"{}",
        b"x" * (p.signaling.MAX_MESSAGE_BYTES + 1),
        "not json",
        "[1]",
        '{"type": 3}',
        '{"type": "dance"}',
        "x" * (p.signaling.MAX_MESSAGE_BYTES + 1),
    ],
)
def test_the_portal_frames_follow_the_kiosk_rules(frame):
    """One framing for both protocols (kiosk.signaling.parse_frame): the same code."""
    with pytest.raises(p.signaling.SignalingError) as kiosk:
        p.signaling.parse_client_message(frame)
    with pytest.raises(p.PortalProtocolError) as portal:
        p.parse(frame, p.CUSTOMER_PARSERS)
    assert portal.value.code == kiosk.value.code
    assert not isinstance(portal.value, p.signaling.SignalingError)  # the kiosk's catch
