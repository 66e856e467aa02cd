"""The portal's WebSocket protocol (docs/signaling.md, "Portal"): pure parsers, no I/O.

Two sockets, one rule book: the customer's (``/ws/kiosk/<slug>/portal/`` from a kiosk,
``/ws/portal/link/<token>/`` from a one-time link) and the agent's (``/ws/portal/agent/``).
Frames, sizes and the SDP rules are the kiosk protocol's (``kiosk.signaling``); the portal
adds its own messages and error codes. Each parser returns a typed message or raises
``PortalProtocolError`` with a stable code; the framing (``parse``), the field rule and the
``error`` message are ``kiosk.signaling``'s own functions, given the portal's codes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kiosk import signaling
from kiosk.portal.models import Service

PROTOCOL_VERSION = 1

ERROR_CODES = {
    **signaling.ERROR_CODES,
    "unknown_service": "There is no such service.",
    "not_agent": "This account may not do this.",
    "agent_not_consented": "The agent's digital-human identity has no valid consent now.",
    "queue_empty": "No customer is waiting for this (any more).",
    "not_in_call": "There is no call on this connection.",
    "not_allowed": "The agent does not allow a supervisor now.",
    "already_queued": "This connection is already in the queue or in a call.",
    "link_invalid": "This link is not valid (used, expired or unknown).",
    "login_required": "Log in as staff first.",
}

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
MAX_RESUME_CHARS = 64


class PortalProtocolError(signaling.ProtocolError):
    """A portal message that breaks the protocol; ``code`` is one of ERROR_CODES."""

    codes = ERROR_CODES
    kind = "portal"


# --- messages ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Join:
    """The customer agreed to the call's consent text and joins ``service``'s queue."""

    service: str
    language: str
    text_sha256: str
    blur: bool


@dataclass(frozen=True)
class Resume:
    """A customer's page reconnecting (after a network blip or a daphne restart)."""

    call_id: str


@dataclass(frozen=True)
class Accept:
    """The agent takes ``call_id``, or the longest-waiting customer of ``service``."""

    call_id: str | None
    service: str | None


@dataclass(frozen=True)
class Supervisor:
    allowed: bool


@dataclass(frozen=True)
class HomeLinkRequest:
    service: str


@dataclass(frozen=True)
class Offer:
    sdp: str


@dataclass(frozen=True)
class PreviewOffer:
    """The agent's receive-only offer for the preview of their own digital human."""

    sdp: str


@dataclass(frozen=True)
class Bye:
    reason: str = ""


@dataclass(frozen=True)
class Withdraw:
    pass


Message = (
    Join | Resume | Accept | Supervisor | HomeLinkRequest | Offer | PreviewOffer | Bye | Withdraw
)


def _field(data: dict, name: str, kind: type, what: str) -> Any:
    return signaling.require(data, name, kind, what, PortalProtocolError)


def _service(value: Any) -> str:
    if value not in Service.values:
        raise PortalProtocolError(
            "unknown_service", f"'service' must be one of {', '.join(Service.values)}."
        )
    return value


def _call_id(value: Any) -> str:
    if not isinstance(value, str) or not _UUID.match(value):
        raise PortalProtocolError("bad_field", "'call_id' must be a call's UUID.")
    return value


def _parse_join(data: dict) -> Join:
    service = _service(_field(data, "service", str, "a service name"))
    language = _field(data, "language", str, "zh-hans or en")
    if language not in signaling.CONSENT_LANGUAGES:
        raise PortalProtocolError("bad_field", "'language' must be zh-hans or en.")
    sha = data.get("text_sha256", "")
    if not isinstance(sha, str) or (sha and not _HEX64.match(sha)):
        raise PortalProtocolError("bad_field", "'text_sha256' must be 64 lowercase hex digits.")
    blur = data.get("blur", False)
    if not isinstance(blur, bool):
        raise PortalProtocolError("bad_field", "'blur' must be true or false.")
    return Join(service=service, language=language, text_sha256=sha, blur=blur)


def _parse_accept(data: dict) -> Accept:
    call_id = data.get("call_id")
    service = data.get("service")
    return Accept(
        call_id=None if call_id is None else _call_id(call_id),
        service=None if service is None else _service(service),
    )


def _parse_offer(data: dict) -> Offer:
    sdp = _field(data, "sdp", str, "the offer's SDP text")
    try:
        return Offer(sdp=signaling.validate_offer_sdp(sdp))
    except signaling.SignalingError as exc:
        raise PortalProtocolError(exc.code, exc.message) from None


def _parse_bye(data: dict) -> Bye:
    reason = data.get("reason", "")
    if not isinstance(reason, str) or len(reason) > signaling.MAX_REASON_CHARS:
        raise PortalProtocolError("bad_field", "'reason' must be a short string.")
    return Bye(reason=reason)


CUSTOMER_PARSERS: dict[str, Callable[[dict], Message]] = {
    "join": _parse_join,
    "resume": lambda d: Resume(call_id=_call_id(d.get("call_id"))),
    "offer": _parse_offer,
    "bye": _parse_bye,
    "withdraw": lambda d: Withdraw(),
}

AGENT_PARSERS: dict[str, Callable[[dict], Message]] = {
    "accept": _parse_accept,
    "offer": _parse_offer,
    "preview_offer": lambda d: PreviewOffer(
        sdp=_field(d, "sdp", str, "the preview's SDP")[: signaling.MAX_SDP_BYTES]
    ),
    "bye": _parse_bye,
    "supervisor": lambda d: Supervisor(allowed=_field(d, "allowed", bool, "true or false")),
    "home_link": lambda d: HomeLinkRequest(service=_service(d.get("service"))),
}

SUPERVISOR_PARSERS: dict[str, Callable[[dict], Message]] = {
    "offer": _parse_offer,
    "bye": _parse_bye,
}


def parse(text: str | bytes | None, parsers: dict[str, Callable[[dict], Message]]) -> Message:
    """Validate one client frame against one socket's parsers (the kiosk socket's framing)."""
    return signaling.parse_frame(text, parsers, PortalProtocolError)


# --- server messages ---------------------------------------------------------------------------


def error(code: str, message: str | None = None) -> dict[str, Any]:
    return signaling.error(code, message, PortalProtocolError)


encode = signaling.encode
