"""The channel-layer messages between the signaling consumer (daphne) and media workers.

Names and shapes live here once; both sides import them. Every message is a dict with a
``type`` (Channels dispatches ``a.b`` to the handler ``a_b``). See docs/signaling.md for the
browser-facing protocol, which is a different, validated JSON protocol.

consumer -> OFFERS_CHANNEL (competing consumers: a worker receives only while it has room)
    media.offer      session_id, kiosk, engine, identity_id, sdp, sdp_type, reply_channel,
                     deadline (unix seconds; a worker drops an offer past it), ice_servers

worker -> the consumer's reply_channel
    media.answer     session_id, sdp, sdp_type, worker, control_channel
    media.refused    session_id, code (see REFUSAL_CODES), message
    media.state      session_id, state (see SESSION_STATES), detail
    media.stats      session_id, stats (dict; sent at least every STATS_INTERVAL_S)
    media.ended      session_id, reason (consent.models.EndReason value), detail

consumer -> the worker's control_channel (named in media.answer)
    session.candidate    session_id, candidate (RTCIceCandidateInit dict)
    session.bye          session_id, reason
    session.client_stats session_id, stats (what the page measured, e.g. loop_ms)

anyone -> CONTROL_GROUP (every worker listens)
    fusion.switch    kiosk (slug or None for global), enabled (optional bool): a nudge to
                     re-read the switch now; the database row stays the truth. With
                     enabled=False a worker pauses the matching sessions at once (off is the
                     safe side); "on" is only believed from the database.
    sessions.end     session_id / kiosk / identity_id (any subset), reason, detail

worker -> STATS_GROUP (the dashboard listens)
    session.stats    session_id, kiosk, worker, stats
    session.ended    session_id, kiosk, worker, reason

A worker reads a ``media.offer`` through :meth:`MediaOffer.from_message` (the signaling
side's parsers in ``kiosk/signaling.py`` have the same shape): a validated offer, or an
:class:`OfferRefused` with its refusal code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

OFFERS_CHANNEL = "media-engine.offers"
CONTROL_GROUP = "media-engine.control"
STATS_GROUP = "media-engine.stats"

# How long the consumer waits for a worker to answer before telling the kiosk "busy".
OFFER_TIMEOUT_S = 6.0
# Workers send media.stats at least this often; the consumer declares the worker lost
# after WORKER_LOST_AFTER_S without any message from it.
STATS_INTERVAL_S = 1.0
WORKER_LOST_AFTER_S = 5.0

REFUSAL_CODES = ("busy", "disabled", "bad_offer", "no_video", "engine_unavailable", "expired")
SESSION_STATES = ("connecting", "live", "paused", "stopped", "failed")


def sessions_end(
    *,
    reason: str,
    detail: str = "",
    session_id: str | None = None,
    kiosk: str | None = None,
    identity_id: int | None = None,
) -> dict:
    """``sessions.end`` for CONTROL_GROUP: end the sessions matching every given key (at
    least one: a worker never ends "everything")."""
    keys = {"session_id": session_id, "kiosk": kiosk, "identity_id": identity_id}
    chosen = {k: (str(v) if k == "session_id" else v) for k, v in keys.items() if v is not None}
    if not chosen:
        raise ValueError("sessions.end needs a session_id, kiosk or identity_id")
    return {"type": "sessions.end", "reason": reason, "detail": detail[:500], **chosen}


def fusion_switch(kiosk: str | None, enabled: bool | None = None) -> dict:
    """``fusion.switch`` for CONTROL_GROUP: re-read the switch (``enabled=False``: pause at
    once, the safe side; "on" is only believed from the database)."""
    message: dict = {"type": "fusion.switch", "kiosk": kiosk}
    if enabled is not None:
        message["enabled"] = enabled
    return message


class OfferRefused(Exception):
    """A ``media.offer`` a worker will not serve; ``code`` is one of REFUSAL_CODES."""

    def __init__(self, code: str, message: str) -> None:
        if code not in REFUSAL_CODES:
            raise ValueError(f"unknown refusal code {code!r}")
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


def reply_channel_of(message: dict) -> str | None:
    """Where an offer's answer or refusal goes; ``None``: nobody can be told (drop it)."""
    reply = message.get("reply_channel")
    return reply if isinstance(reply, str) and reply else None


@dataclass(frozen=True)
class MediaOffer:
    """A kiosk's ``media.offer``, checked. The SDP and ICE servers are checked by the
    session that uses them (``media_engine/session.py``)."""

    session_id: str
    reply_channel: str
    kiosk: str
    engine: str
    identity_id: int | None
    sdp: Any
    sdp_type: Any
    ice_servers: Any

    @classmethod
    def from_message(cls, message: dict, *, now: float | None = None) -> MediaOffer:
        """Validate ``message`` (its reply channel already known: see ``reply_channel_of``);
        raise :class:`OfferRefused` (``bad_offer`` or ``expired``) on any fault."""
        reply = reply_channel_of(message)
        if reply is None:
            raise ValueError("a media.offer without a reply channel cannot be refused")
        session_id = message.get("session_id")
        if not isinstance(session_id, str) or not session_id:
            raise OfferRefused("bad_offer", "the offer has no session_id")
        deadline = message.get("deadline")
        if isinstance(deadline, int | float) and (now or time.time()) > deadline:
            raise OfferRefused("expired", "the offer came too late")
        kiosk = message.get("kiosk")
        engine = message.get("engine") or "label"
        if not isinstance(kiosk, str) or not isinstance(engine, str):
            raise OfferRefused("bad_offer", "kiosk and engine are needed")
        identity_id = message.get("identity_id")
        if identity_id is not None and (
            isinstance(identity_id, bool) or not isinstance(identity_id, int)
        ):
            raise OfferRefused("bad_offer", "identity_id must be a number")
        return cls(
            session_id=session_id,
            reply_channel=reply,
            kiosk=kiosk,
            engine=engine,
            identity_id=identity_id,
            sdp=message.get("sdp"),
            sdp_type=message.get("sdp_type"),
            ice_servers=message.get("ice_servers"),
        )
