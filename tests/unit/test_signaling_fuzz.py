"""Fuzzing the kiosk signaling protocol with hypothesis (seeded: ``derandomize=True``, so
every CI run tries the same cases and a failure reproduces).

The bulk (over 10,000 generated messages and SDP mutations per run) drives the pure parsing
functions of kiosk/signaling.py, which is where every client byte is judged; a share of the
generated messages then goes through the real consumer over the real Redis channel layer.
Whatever comes in: a stable error code (never ``internal``), no traceback in the log, no hang,
and an enrolled visitor is served normally afterwards.
"""

import json
import logging
import random

import pytest
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from kiosk import signaling
from kiosk.ice_policy import NetworkPolicy, parse_networks
from tests.support.enrolment import cookie, enrol_async
from tests.unit.test_signaling import VIDEO_OFFER
from tests.unit.test_signaling_consumer import (  # noqa: F401 (fixtures)
    APP,
    WAIT,
    close_thread_connections,
    connect,
    consent,
    kiosks,
    redis_layer,
)

# Per run: 400 x 20 seeded frames + 200 x 10 seeded SDP mutations + 300 hypothesis frames
# + 200 hypothesis SDP mutations = 10,500 through the parsers; 6 x 20 through the consumer.
PURE_BATCHES = 400
HYPOTHESIS_FRAMES = 300
HYPOTHESIS_SDPS = 200
SOCKET_BATCHES = 6
BATCH = 20
POLICY = NetworkPolicy(allowed=parse_networks("127.0.0.0/8"))
FUZZ = hsettings(
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# --- what a hostile client sends -------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
digits = st.text(alphabet="0123456789", min_size=1, max_size=7) | st.integers(1, 6000).map(
    lambda n: "9" * n
)
ports = digits | st.sampled_from(["-1", "65536", "9/2", "٩", "", "0x10", "1e3"])
addresses = st.sampled_from(
    ["127.0.0.1", "::1", "169.254.1.1", "fe80::1", "0.0.0.0", "x.local", "224.0.0.1", ""]
) | st.text(max_size=30)


@st.composite
def candidate_lines(draw) -> str:
    fields = [
        draw(st.text(alphabet="0123456789abc", min_size=1, max_size=8)),
        draw(st.sampled_from(["1", "2", "999", "x"]) | digits),
        draw(st.sampled_from(["udp", "tcp", "UDP", "sctp", ""])),
        draw(st.sampled_from(["2130706431", "1"]) | digits),
        draw(addresses),
        draw(ports),
        draw(st.sampled_from(["typ", "type", ""])),
        draw(st.sampled_from(["host", "srflx", "relay", "prflx"]) | st.text(max_size=8)),
    ]
    count = draw(st.integers(min_value=0, max_value=len(fields)))
    return "candidate:" + " ".join(fields[:count] if count < 3 else fields)


@st.composite
def sdp_mutations(draw) -> str:
    lines = VIDEO_OFFER.split("\r\n")
    lines += [f"a={draw(candidate_lines())}" for _ in range(draw(st.integers(0, 3)))]
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        index = draw(st.integers(min_value=0, max_value=len(lines)))
        kind = draw(st.sampled_from(["insert", "replace", "port", "delete", "many"]))
        if kind == "insert":
            lines.insert(index, draw(st.text(max_size=60)))
        elif kind == "replace" and index < len(lines):
            lines[index] = draw(st.text(max_size=60))
        elif kind == "port":
            lines.insert(
                index,
                f"m={draw(st.sampled_from(['video', 'audio', 'x']))} "
                f"{draw(ports)} UDP/TLS/RTP/SAVPF 96",
            )
        elif kind == "delete" and index < len(lines):
            del lines[index]
        elif kind == "many":
            line = f"a={draw(candidate_lines())}"
            lines += [line] * draw(st.sampled_from([31, 33, 200, 1000]))
    return draw(st.sampled_from(["\r\n", "\n", "\r"])).join(lines)


# Plain generators driven by a hypothesis-drawn seed: the same variety at a fraction of
# hypothesis' cost per drawn value, so that over 10,000 frames fit in a CI run.
WORDS = [
    "candidate:",
    "a=",
    "m=video",
    "m=audio",
    "typ",
    "host",
    "udp",
    "127.0.0.1",
    "::1",
    "169.254.1.1",
    "fe80::1",
    "x.local",
    "0.0.0.0",
    "\x00",
    "é",
    "∞",
    "{",
    "]",
    "\r\n",
    "UDP/TLS/RTP/SAVPF",
    "-1",
    "65536",
    "9" * 5000,
    "٩",
    "/",
    " ",
    "",
    "null",
    "1e309",
]


def random_text(rng, limit: int = 40) -> str:
    pieces = [
        rng.choice(WORDS) if rng.random() < 0.5 else chr(rng.randrange(0, 0x3000))
        for _ in range(rng.randrange(0, 6))
    ]
    return "".join(pieces)[: limit if rng.random() < 0.9 else 6000]


def random_value(rng, depth: int = 0):
    roll = rng.randrange(9 if depth < 3 else 6)
    if roll == 0:
        return None
    if roll == 1:
        return rng.random() < 0.5
    if roll == 2:
        return rng.choice([0, -1, 1, 2**63, -(2**70), 64, 63, rng.randrange(-999, 999)])
    if roll == 3:
        return rng.choice([0.0, -0.0, 1e308, -1e-300, float("inf"), float("nan"), rng.random()])
    if roll in (4, 5):
        return random_text(rng)
    if roll in (6, 7):
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {random_text(rng, 8): random_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def random_candidate_line(rng) -> str:
    fields = [
        str(rng.randrange(10**6)),
        rng.choice(["1", "2", "x", "9" * 40]),
        rng.choice(["udp", "tcp", "sctp", ""]),
        rng.choice(["2130706431", "1", "-5"]),
        rng.choice(WORDS[6:14]) if rng.random() < 0.8 else random_text(rng),
        rng.choice(["5000", "0", "65535", "65536", "9" * 5000, "x", "٩", ""]),
        rng.choice(["typ", "typ", "type"]),
        rng.choice(["host", "srflx", "relay", ""]),
    ]
    if rng.random() < 0.2:
        fields = fields[: rng.randrange(len(fields) + 1)]
    return "candidate:" + " ".join(fields)


def random_sdp(rng) -> str:
    lines = VIDEO_OFFER.split("\r\n")
    lines += [f"a={random_candidate_line(rng)}" for _ in range(rng.randrange(4))]
    for _ in range(rng.randrange(1, 5)):
        index = rng.randrange(len(lines) + 1)
        kind = rng.randrange(6)
        if kind == 0:
            lines.insert(index, random_text(rng, 80))
        elif kind == 1 and index < len(lines):
            lines[index] = random_text(rng, 80)
        elif kind == 2:
            port = rng.choice(["9", "0", "9/2", "65536", "-1", "9" * rng.randrange(1, 6000)])
            lines.insert(index, f"m={rng.choice(['video', 'audio', 'x'])} {port} RTP/AVP 96")
        elif kind == 3 and index < len(lines):
            del lines[index]
        elif kind == 4:
            lines += [f"a={random_candidate_line(rng)}"] * rng.choice([31, 33, 1000])
        else:
            cut = rng.randrange(len(VIDEO_OFFER))
            lines = (VIDEO_OFFER[:cut] + random_text(rng)).split("\r\n")
    return rng.choice(["\r\n", "\n", "\r"]).join(lines)


def random_fields(rng) -> dict:
    return {
        "given": lambda: rng.random() < 0.5 if rng.random() < 0.7 else random_value(rng),
        "language": lambda: rng.choice([*signaling.CONSENT_LANGUAGES, random_value(rng)]),
        "text_sha256": lambda: rng.choice(["a" * 64, "A" * 64, "", random_value(rng)]),
        "sdp": lambda: random_sdp(rng) if rng.random() < 0.8 else random_value(rng),
        "sdp_type": lambda: rng.choice(["offer", "answer", random_value(rng)]),
        "candidate": lambda: rng.choice(
            [
                None,
                random_value(rng),
                {
                    "candidate": random_candidate_line(rng),
                    "sdpMid": rng.choice(["0", None, 7, "x" * 70]),
                    "sdpMLineIndex": rng.choice([0, None, -1, 64, True]),
                },
            ]
        ),
        "reason": lambda: random_value(rng),
        "loop_ms": lambda: random_value(rng),
        random_text(rng, 12): lambda: random_value(rng),
    }


def random_frame(rng) -> str | bytes:
    roll = rng.randrange(10)
    if roll == 0:
        return random_text(rng, 200)
    if roll == 1:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(16)))
    message = {"type": rng.choice([*signaling.CLIENT_PARSERS, random_text(rng, 10)])}
    for name, make in random_fields(rng).items():
        if rng.random() < 0.45:
            message[name] = make()
    return json.dumps(message)


def seeded_frames(seed: int, count: int) -> list[str | bytes]:
    rng = random.Random(seed)
    return [random_frame(rng) for _ in range(count)]


candidates = (
    st.none()
    | json_values
    | st.fixed_dictionaries(
        {"candidate": candidate_lines() | st.text(max_size=40)},
        optional={
            "sdpMid": st.none() | st.text(max_size=70) | st.integers(),
            "sdpMLineIndex": st.none() | st.integers(-5, 100) | st.booleans(),
        },
    )
)
typed = st.fixed_dictionaries(
    {"type": st.sampled_from(sorted(signaling.CLIENT_PARSERS)) | st.text(max_size=12)},
    optional={
        "given": st.booleans() | json_values,
        "language": st.sampled_from(signaling.CONSENT_LANGUAGES) | json_values,
        "text_sha256": st.sampled_from(["a" * 64, "A" * 64, ""]) | json_values,
        "sdp": sdp_mutations() | json_values,
        "sdp_type": st.sampled_from(["offer", "answer"]) | json_values,
        "candidate": candidates,
        "reason": st.text(max_size=300) | json_values,
        "loop_ms": st.floats() | st.integers() | json_values,
        "fps": st.floats(allow_nan=True) | json_values,
    },
)
frames = (
    typed.map(json.dumps)
    | st.text(max_size=200)
    | json_values.map(json.dumps)
    | st.binary(max_size=64)
)


def judged(frame: str | bytes) -> str:
    """The code the protocol gives ``frame`` ("" for a valid message), with every further
    check a consumer runs on an offer or a candidate."""
    try:
        message = signaling.parse_client_message(frame)
        if isinstance(message, signaling.Offer):
            signaling.screen_offer_candidates(message.sdp, POLICY)
        if isinstance(message, signaling.Candidate):
            signaling.screen_candidate(message.candidate, POLICY)
    except signaling.SignalingError as exc:
        return exc.code
    return ""


# --- the pure functions: the bulk -------------------------------------------------------------

SEEDS = st.integers(min_value=0, max_value=2**32 - 1)


@hsettings(FUZZ, max_examples=PURE_BATCHES)
@given(seed=SEEDS)
def test_seeded_frames_are_messages_or_stable_errors(seed):
    for frame in seeded_frames(seed, BATCH):
        code = judged(frame)
        assert code == "" or code in signaling.ERROR_CODES, (code, frame[:200])
        assert code != "internal"


@hsettings(FUZZ, max_examples=HYPOTHESIS_FRAMES)
@given(frame=frames)
def test_hypothesis_frames_are_messages_or_stable_errors(frame):
    code = judged(frame)
    assert code == "" or code in signaling.ERROR_CODES
    assert code != "internal"


@hsettings(FUZZ, max_examples=HYPOTHESIS_SDPS)
@given(sdp=sdp_mutations())
def test_sdp_mutations_are_offers_or_stable_errors(sdp):
    code = judged(json.dumps({"type": "offer", "sdp": sdp}))
    assert code in SDP_CODES, code


@hsettings(FUZZ, max_examples=PURE_BATCHES // 2)
@given(seed=SEEDS)
def test_seeded_sdp_mutations_are_offers_or_stable_errors(seed):
    rng = random.Random(seed)
    for _ in range(BATCH // 2):
        code = judged(json.dumps({"type": "offer", "sdp": random_sdp(rng)}))
        assert code in SDP_CODES, code


SDP_CODES = ("", "bad_sdp", "no_video", "sdp_too_large", "too_many_candidates", "message_too_large")


# --- the real consumer: a representative share ------------------------------------------------


async def drain(comm: WebsocketCommunicator, seen: list[dict]) -> bool:
    """Everything the server sent until it goes quiet; False once it closed the socket."""
    while not await comm.receive_nothing(timeout=0.05):
        output = await comm.receive_output(timeout=WAIT)
        if output["type"] == "websocket.close":
            return False
        seen.append(json.loads(output["text"]))
    return True


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(240)
@pytest.mark.usefixtures("kiosks")
@hsettings(FUZZ, max_examples=SOCKET_BATCHES)
@given(seed=SEEDS)
async def test_the_consumer_survives_fuzzed_frames_and_serves_a_visitor(seed, caplog, settings):
    # The rate limits are not under test here (the same socket opens again and again).
    settings.KIOSK_RATE_LIMITS = {k: [100_000, 60] for k in settings.KIOSK_RATE_LIMITS}
    caplog.set_level(logging.INFO)
    token = await enrol_async("lobby")
    seen: list[dict] = []
    comm = await open_socket(token)
    for frame in seeded_frames(seed, BATCH):
        if isinstance(frame, bytes):
            await comm.send_to(bytes_data=frame)
        else:
            await comm.send_to(text_data=frame)
        if not await drain(comm, seen):
            await comm.disconnect()
            comm = await open_socket(token)  # too many errors, or a visit ended: start again
    await comm.disconnect()
    codes = {m.get("code") for m in seen if m["type"] == "error"}
    assert "internal" not in codes, seen
    assert codes <= set(signaling.ERROR_CODES), codes
    assert not [r for r in caplog.records if r.exc_info], "a client's frame logged a traceback"
    # Afterwards a normal enrolled visitor is greeted and gets a session.
    visitor, hello = await connect("counter-2")
    assert hello["type"] == "hello"
    assert await consent(visitor)
    await visitor.disconnect()


async def open_socket(token: str) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(
        APP, "/ws/kiosk/lobby/", headers=[(b"cookie", cookie("lobby", token).encode())]
    )
    connected, _ = await comm.connect(timeout=WAIT)
    assert connected
    assert (await comm.receive_json_from(timeout=WAIT))["type"] == "hello"
    return comm
