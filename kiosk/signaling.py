"""The browser <-> server signaling protocol as plain functions (see docs/signaling.md).

Every text frame on ``/ws/kiosk/<slug>/`` is one JSON object with a ``type``. This module
turns a client frame into a validated message (or a :class:`SignalingError` with a stable
``code`` and a human ``message``) and builds every server message. It does no I/O, so the
consumer stays thin and the rules can be tested one by one.

Adding a client message type is one parser function and one entry in ``CLIENT_PARSERS``.
The portal's sockets (``kiosk/portal/protocol.py``) use the same framing, field rules and
error shape: :func:`parse_frame`, :func:`require` and :func:`error` take the socket's own
parsers, error class and codes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from kiosk.ice_policy import CandidateError, NetworkPolicy, candidate_address, filter_sdp_candidates

PROTOCOL_VERSION = 1

# Limits (bytes of UTF-8). A whole frame over MAX_MESSAGE_BYTES is refused before it is
# parsed; daphne itself closes the socket (1009) for frames over 1 MiB.
MAX_MESSAGE_BYTES = 128 * 1024
MAX_SDP_BYTES = 64 * 1024
MAX_CANDIDATE_BYTES = 1024
MAX_SDP_MID_CHARS = 64
MAX_REASON_CHARS = 200
MAX_TEXT_SHA256_CHARS = 64
MAX_STATS_FIELDS = 16
# Remote ICE candidates per call, in the offer's SDP and trickled together (a browser gathers
# a handful; every one is an address the media worker sends STUN checks to).
MAX_CANDIDATES = 32
MAX_MEDIA_PORT = 65535
# A plausible loop is well under a second; anything outside this is a measuring error.
MAX_LOOP_MS = 60_000.0

CONSENT_LANGUAGES = ("zh-hans", "en")

# Session states shown by the page. The first five come from the media worker
# (media_engine.protocol.SESSION_STATES); "busy" is the consumer's own.
STATES = ("connecting", "live", "paused", "stopped", "failed", "busy")

# Error codes: stable names a client can switch on. The message is for people.
ERROR_CODES = {
    "bad_json": "The message is not valid JSON.",
    "bad_message": "The message is not a JSON object with a string 'type'.",
    "message_too_large": f"The message is larger than {MAX_MESSAGE_BYTES} bytes.",
    "unknown_type": "Unknown message type.",
    "missing_field": "A required field is missing.",
    "bad_field": "A field has the wrong type or value.",
    "sdp_too_large": f"The SDP is larger than {MAX_SDP_BYTES} bytes.",
    "bad_sdp": "The SDP is not a session description.",
    "no_video": "The offer has no video (no 'm=video' line with a port).",
    "unknown_kiosk": "There is no kiosk with this name.",
    "not_enrolled": "This device is not enrolled for this kiosk (or its credential was revoked).",
    "rate_limited": "Too many connections or visits from here; please wait a minute.",
    "kiosk_busy": "This kiosk already has a live call.",
    "too_many_candidates": f"At most {MAX_CANDIDATES} ICE candidates per call.",
    "consent_required": "An offer needs the visitor's consent first.",
    "consent_already_given": "This connection already has a session.",
    "consent_outdated": "The consent text changed: show the new text and ask again.",
    "duplicate_offer": "This connection already made an offer; open a new one to start again.",
    "no_offer": "There is no call on this connection yet.",
    "disabled": "Face fusion is switched off for this kiosk.",
    "busy": "No media server has room right now. Please try again in a moment.",
    "worker_lost": "The media server stopped answering; the session has ended.",
    "engine_unavailable": "The media engine is not available.",
    "refused": "The media server refused the call.",
    "too_many_errors": "Too many bad messages; the connection is closed.",
    "internal": "Something went wrong on the server.",
}

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class ProtocolError(Exception):
    """A client message that breaks a socket's protocol: ``code`` is one of the class's
    ``codes`` (stable, for programs), ``message`` is for people."""

    codes: ClassVar[Mapping[str, str]] = {}
    kind: ClassVar[str] = "protocol"

    def __init__(self, code: str, message: str | None = None) -> None:
        if code not in self.codes:
            raise ValueError(f"unknown {self.kind} error code {code!r}")
        self.code = code
        self.message = message or self.codes[code]
        super().__init__(f"{code}: {self.message}")


class SignalingError(ProtocolError):
    """A client message that breaks the kiosk protocol; ``code`` is one of ERROR_CODES."""

    codes = ERROR_CODES
    kind = "signaling"


# --- client messages -----------------------------------------------------------------------


@dataclass(frozen=True)
class Consent:
    """The visitor's choice: ``given`` True for "I agree", False for "continue without"."""

    given: bool
    language: str
    text_sha256: str = ""


@dataclass(frozen=True)
class Offer:
    sdp: str


@dataclass(frozen=True)
class Candidate:
    """A trickled ICE candidate (RTCIceCandidateInit); ``None`` ends the candidates."""

    candidate: dict[str, Any] | None


@dataclass(frozen=True)
class Bye:
    reason: str = ""


@dataclass(frozen=True)
class Withdraw:
    """The visitor withdrew consent (the Withdraw button): processing stops at once."""


@dataclass(frozen=True)
class Stats:
    """What the page measured: ``loop_ms`` (camera frame out -> fused frame shown)."""

    loop_ms: float | None = None
    values: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float | None]:
        return {"loop_ms": self.loop_ms, **self.values}


ClientMessage = Consent | Offer | Candidate | Bye | Withdraw | Stats


def require(
    data: dict,
    name: str,
    kind: type | tuple[type, ...],
    what: str,
    error: type[ProtocolError] = SignalingError,
) -> Any:
    """``data[name]``, of type ``kind`` (``what`` says it to people), or ``error``."""
    if name not in data:
        raise error("missing_field", f"'{name}' is required ({what}).")
    value = data[name]
    # bool is an int in Python; never accept it where a number is meant.
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise error("bad_field", f"'{name}' must be {what}.")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _optional_str(data: dict, name: str, max_chars: int) -> str:
    value = data.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SignalingError("bad_field", f"'{name}' must be a string.")
    if len(value) > max_chars:
        raise SignalingError("bad_field", f"'{name}' is longer than {max_chars} characters.")
    return value


def _parse_consent(data: dict) -> Consent:
    given = require(data, "given", bool, "true (I agree) or false (continue without)")
    language = require(data, "language", str, "one of " + ", ".join(CONSENT_LANGUAGES))
    if language not in CONSENT_LANGUAGES:
        raise SignalingError(
            "bad_field", "'language' must be one of " + ", ".join(CONSENT_LANGUAGES) + "."
        )
    text_sha256 = _optional_str(data, "text_sha256", MAX_TEXT_SHA256_CHARS)
    if text_sha256 and not _HEX64.match(text_sha256):
        raise SignalingError("bad_field", "'text_sha256' must be 64 lowercase hex digits.")
    return Consent(given=given, language=language, text_sha256=text_sha256)


def _media_port(line: str) -> int:
    """The port of an ``m=`` line (``m=video 9 UDP/TLS/RTP/SAVPF 96``; ``9/2`` is allowed)."""
    fields = line[2:].split(" ")
    if len(fields) < 4:
        raise SignalingError("bad_sdp", "An 'm=' line needs media, port, protocol and formats.")
    port = fields[1].split("/", 1)[0]
    if not port.isascii() or not port.isdigit() or len(port) > 5 or int(port) > MAX_MEDIA_PORT:
        raise SignalingError("bad_sdp", f"The port {port[:12]!r} of an 'm=' line is not 0-65535.")
    return int(port)


def validate_offer_sdp(sdp: str) -> str:
    """The rules for an offer's SDP: size, shape, and a video m-line with a port."""
    if len(sdp.encode("utf-8", "replace")) > MAX_SDP_BYTES:
        raise SignalingError("sdp_too_large")
    if not sdp.startswith("v=0"):
        raise SignalingError("bad_sdp", "The SDP must start with 'v=0'.")
    video = False
    for raw in sdp.split("\n"):
        line = raw.rstrip("\r")
        if line.startswith("m="):
            port = _media_port(line)
            video = video or (line.startswith("m=video ") and port > 0)
    if not video:
        raise SignalingError("no_video")
    return sdp


def screen_offer_candidates(sdp: str, policy: NetworkPolicy) -> tuple[str, int]:
    """The offer's SDP without refused candidates, and how many candidates it named.

    Raises ``bad_sdp`` for an unreadable candidate line and ``too_many_candidates`` above
    ``MAX_CANDIDATES`` (the limit counts the trickled ones too: see ``screen_candidate``).
    """
    try:
        filtered = filter_sdp_candidates(sdp, policy)
    except CandidateError as exc:
        raise SignalingError("bad_sdp", f"An 'a=candidate' line is not one ({exc}).") from None
    if filtered.candidates > MAX_CANDIDATES:
        raise SignalingError("too_many_candidates")
    return filtered.sdp, filtered.candidates


def screen_candidate(candidate: dict[str, Any] | None, policy: NetworkPolicy) -> bool:
    """Whether a trickled candidate (already parsed) may reach the media worker."""
    if candidate is None or not candidate["candidate"]:
        return True  # end of candidates
    address, _ = candidate_address(candidate["candidate"])
    return policy.allows(address)


def _parse_offer(data: dict) -> Offer:
    sdp = require(data, "sdp", str, "the offer's SDP text")
    sdp_type = data.get("sdp_type", "offer")
    if sdp_type != "offer":
        raise SignalingError("bad_field", "'sdp_type' must be 'offer' when given.")
    return Offer(sdp=validate_offer_sdp(sdp))


def _parse_candidate(data: dict) -> Candidate:
    if "candidate" not in data:
        raise SignalingError("missing_field", "'candidate' is required (an object or null).")
    raw = data["candidate"]
    if raw is None:
        return Candidate(candidate=None)
    if not isinstance(raw, dict):
        raise SignalingError("bad_field", "'candidate' must be an RTCIceCandidateInit object.")
    text = require(raw, "candidate", str, "the candidate line")
    if len(text.encode("utf-8")) > MAX_CANDIDATE_BYTES:
        raise SignalingError("bad_field", f"The candidate is longer than {MAX_CANDIDATE_BYTES}.")
    if text and not text.startswith(("candidate:", "a=candidate:")):
        raise SignalingError("bad_field", "'candidate.candidate' must start with 'candidate:'.")
    if text:
        try:
            candidate_address(text)
        except CandidateError as exc:
            raise SignalingError("bad_field", f"The candidate is not readable ({exc}).") from None
    mid = raw.get("sdpMid")
    if mid is not None and (not isinstance(mid, str) or len(mid) > MAX_SDP_MID_CHARS):
        raise SignalingError("bad_field", "'candidate.sdpMid' must be a short string or null.")
    index = raw.get("sdpMLineIndex")
    if index is not None and (
        isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 64
    ):
        raise SignalingError("bad_field", "'candidate.sdpMLineIndex' must be 0..63 or null.")
    if mid is None and index is None:
        raise SignalingError("missing_field", "A candidate needs 'sdpMid' or 'sdpMLineIndex'.")
    return Candidate(
        candidate={
            "candidate": text.removeprefix("a="),
            "sdpMid": mid,
            "sdpMLineIndex": index,
        }
    )


def _parse_bye(data: dict) -> Bye:
    return Bye(reason=_optional_str(data, "reason", MAX_REASON_CHARS))


def _number(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SignalingError("bad_field", f"'{name}' must be a number.")
    value = float(value)
    if not math.isfinite(value) or not low <= value <= high:
        raise SignalingError("bad_field", f"'{name}' must be between {low:g} and {high:g}.")
    return value


_STATS_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def _parse_stats(data: dict) -> Stats:
    loop = data.get("loop_ms")
    loop_ms = None if loop is None else _number("loop_ms", loop, 0.0, MAX_LOOP_MS)
    values: dict[str, float] = {}
    extra = {k: v for k, v in data.items() if k not in ("type", "loop_ms")}
    if len(extra) > MAX_STATS_FIELDS:
        raise SignalingError("bad_field", f"At most {MAX_STATS_FIELDS} stats fields.")
    for name, value in extra.items():
        if not _STATS_NAME.match(name):
            raise SignalingError("bad_field", f"Stats field names are snake_case: {name[:40]!r}.")
        if value is None:
            continue
        values[name] = _number(name, value, -1e9, 1e9)
    return Stats(loop_ms=loop_ms, values=values)


CLIENT_PARSERS: dict[str, Callable[[dict], ClientMessage]] = {
    "consent": _parse_consent,
    "offer": _parse_offer,
    "candidate": _parse_candidate,
    "bye": _parse_bye,
    "withdraw": lambda data: Withdraw(),
    "stats": _parse_stats,
}


Message = TypeVar("Message")


def parse_frame(
    text: str | bytes | None,
    parsers: Mapping[str, Callable[[dict], Message]],
    error: type[ProtocolError] = SignalingError,
) -> Message:
    """Validate one client frame with the parser of its ``type``; raise ``error`` with a
    stable code on any fault (the kiosk's socket and the portal's share these rules)."""
    if text is None:
        raise error("bad_message", "Send JSON text frames, not binary frames.")
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "replace"))
    if size > MAX_MESSAGE_BYTES:
        raise error("message_too_large")
    if isinstance(text, bytes):
        raise error("bad_message", "Send JSON text frames, not binary frames.")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise error("bad_json", f"The message is not valid JSON ({exc}).") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise error("bad_message")
    parser = parsers.get(data["type"])
    if parser is None:
        known = ", ".join(sorted(parsers))
        raise error("unknown_type", f"Unknown message type {data['type'][:40]!r}; known: {known}.")
    return parser(data)


def parse_client_message(text: str | bytes | None) -> ClientMessage:
    """Validate one kiosk client frame; raise SignalingError with a stable code on any fault."""
    return parse_frame(text, CLIENT_PARSERS)


# --- server messages -----------------------------------------------------------------------


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def hello(
    *,
    kiosk: dict[str, Any],
    ice_servers: list[dict[str, Any]],
    consent_texts: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "type": "hello",
        "protocol": PROTOCOL_VERSION,
        "kiosk": kiosk,
        "ice_servers": ice_servers,
        "consent_texts": consent_texts,
        "limits": {
            "max_message_bytes": MAX_MESSAGE_BYTES,
            "max_sdp_bytes": MAX_SDP_BYTES,
            "max_candidate_bytes": MAX_CANDIDATE_BYTES,
            "max_candidates": MAX_CANDIDATES,
        },
    }


def consent_ok(session_id: str, *, given: bool) -> dict[str, Any]:
    return {"type": "consent_ok", "session_id": session_id, "given": given}


def answer(sdp: str) -> dict[str, Any]:
    return {"type": "answer", "sdp": sdp, "sdp_type": "answer"}


def candidate(init: dict[str, Any] | None) -> dict[str, Any]:
    return {"type": "candidate", "candidate": init}


def state(name: str, reason: str = "", message: str = "") -> dict[str, Any]:
    if name not in STATES:
        raise ValueError(f"unknown state {name!r}")
    return {"type": "state", "state": name, "reason": reason, "message": message}


def stats(values: dict[str, Any]) -> dict[str, Any]:
    return {"type": "stats", "stats": values}


def error(
    code: str, message: str | None = None, error_class: type[ProtocolError] = SignalingError
) -> dict[str, Any]:
    """The ``error`` server message for ``code`` (one of ``error_class.codes``)."""
    if code not in error_class.codes:
        raise ValueError(f"unknown {error_class.kind} error code {code!r}")
    return {"type": "error", "code": code, "message": message or error_class.codes[code]}


def ended(reason: str, detail: str = "") -> dict[str, Any]:
    return {"type": "ended", "reason": reason, "detail": detail}


def reoffer(session_id: str, reason: str) -> dict[str, Any]:
    """The media worker of this call is gone; the consent still holds: make a new offer
    (a new peer connection) for the new ``session_id`` on this same socket."""
    return {"type": "reoffer", "session_id": session_id, "reason": reason}


def state_after_end(reason: str) -> str:
    """The state the page shows once a session has ended for ``reason`` (an EndReason)."""
    if reason == "busy":
        return "busy"
    if reason in ("error", "ice_failed"):
        return "failed"
    return "stopped"
