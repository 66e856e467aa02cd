"""``media_engine.protocol.MediaOffer.from_message``: what a worker refuses, and with which code."""

import pytest

from media_engine.protocol import MediaOffer, OfferRefused, reply_channel_of

NOW = 1_800_000_000.0  # the worker's clock in these tests (the offer's deadline is absolute)
GOOD = {
    "type": "media.offer",
    "session_id": "3f0c1c1e-2d2b-4a8e-9a57-0f4c8c3f2a10",
    "kiosk": "counter-1",
    "engine": "label",
    "identity_id": 7,
    "sdp": "v=0\r\n",
    "sdp_type": "offer",
    "reply_channel": "specific.abc!def",
    "deadline": NOW + 60,
    "ice_servers": [],
}


def test_a_good_offer_is_read_whole():
    offer = MediaOffer.from_message(GOOD, now=NOW)
    assert offer.session_id == GOOD["session_id"]
    assert offer.reply_channel == GOOD["reply_channel"]
    assert (offer.kiosk, offer.engine, offer.identity_id) == ("counter-1", "label", 7)
    assert (offer.sdp, offer.sdp_type, offer.ice_servers) == ("v=0\r\n", "offer", [])


def test_no_engine_means_the_label_engine():
    assert MediaOffer.from_message({**GOOD, "engine": None}, now=NOW).engine == "label"
    assert MediaOffer.from_message({**GOOD, "identity_id": None}, now=NOW).identity_id is None


@pytest.mark.parametrize(
    ("change", "code", "words"),
    [
        ({"session_id": None}, "bad_offer", "session_id"),
        ({"session_id": ""}, "bad_offer", "session_id"),
        ({"session_id": 5}, "bad_offer", "session_id"),
        ({"deadline": NOW - 1}, "expired", "too late"),
        ({"kiosk": None}, "bad_offer", "kiosk and engine"),
        ({"engine": 3}, "bad_offer", "kiosk and engine"),
        ({"identity_id": "7"}, "bad_offer", "identity_id"),
        ({"identity_id": True}, "bad_offer", "identity_id"),
    ],
)
def test_bad_offers_are_refused_with_a_code(change, code, words):
    with pytest.raises(OfferRefused) as refused:
        MediaOffer.from_message({**GOOD, **change}, now=NOW)
    assert refused.value.code == code
    assert words in refused.value.message


def test_an_offer_without_a_reply_channel_cannot_be_answered():
    for reply in (None, "", 4):
        assert reply_channel_of({**GOOD, "reply_channel": reply}) is None
        with pytest.raises(ValueError):
            MediaOffer.from_message({**GOOD, "reply_channel": reply}, now=NOW)
    assert reply_channel_of(GOOD) == GOOD["reply_channel"]
