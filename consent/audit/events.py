"""An audit event: who did what to what, validated; recorded in the caller's transaction.

The public entry point for web code (views, consumers, admin actions, the dashboard) is
:func:`record_event`: it writes the event to the outbox **in the caller's transaction**
(so an event exists exactly when the change it describes was committed) and, once that
transaction commits, asks Celery to relay it (``consent.relay_outbox``, by name: this module
imports neither the tasks nor the relay). Events from the media engine arrive as plain dicts
(see :func:`event_from_dict`) through the ``consent.ingest_events`` task.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from consent import chain
from consent.audit_models import ActorKind, AuditOutbox

log = logging.getLogger(__name__)

RELAY_TASK = "consent.relay_outbox"
MAX_DETAILS_BYTES = 8192
# Never in the audit trail (privacy): the visitor's frames, landmarks or images.
FORBIDDEN_DETAIL_KEYS = frozenset(
    {"frame", "frames", "image", "images", "landmarks", "pixels", "portrait", "embedding"}
)
ACTOR_KINDS = frozenset(ActorKind.values)


class InvalidAuditEvent(ValueError):
    """An event that cannot be stored as given (the message says why)."""


@dataclass(frozen=True)
class Actor:
    """Who did it: an operator user, a kiosk, or the system (a named component)."""

    kind: str
    name: str

    @classmethod
    def user(cls, user: Any) -> Actor:
        return cls(ActorKind.USER, user.get_username())

    @classmethod
    def kiosk(cls, kiosk: Any) -> Actor:
        return cls(ActorKind.KIOSK, getattr(kiosk, "slug", str(kiosk)))

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        return cls(ActorKind.SYSTEM, name)

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


def as_actor(actor: Any) -> Actor:
    """Accept an Actor, a Django user, a Kiosk, or a string ``"kind:name"`` / ``"system"``."""
    if isinstance(actor, Actor):
        result = actor
    elif hasattr(actor, "get_username"):
        if not getattr(actor, "is_authenticated", True):
            raise InvalidAuditEvent("an anonymous user cannot be an audit actor")
        result = Actor.user(actor)
    elif hasattr(actor, "slug") and actor.__class__.__name__ == "Kiosk":
        result = Actor.kiosk(actor)
    elif isinstance(actor, str):
        kind, sep, name = actor.partition(":")
        if not sep:
            kind, name = ActorKind.SYSTEM, actor
        result = Actor(kind, name)
    else:
        raise InvalidAuditEvent(f"cannot tell who the actor is from {type(actor).__name__}")
    if result.kind not in ACTOR_KINDS:
        raise InvalidAuditEvent(
            f"actor kind must be one of {', '.join(ActorKind.values)}, not {result.kind!r}"
        )
    if not result.name or len(result.name) > 200:
        raise InvalidAuditEvent("actor name must be 1..200 characters")
    return result


def as_target(target: Any) -> str:
    """A string such as ``"kiosk:demo"``; a model instance becomes ``"app.model:pk"``."""
    if isinstance(target, models.Model):
        target = f"{target._meta.label_lower}:{target.pk}"
    if target is None:
        target = ""
    if not isinstance(target, str):
        raise InvalidAuditEvent(f"target must be a string or a model, not {type(target).__name__}")
    if len(target) > 200:
        raise InvalidAuditEvent("target is longer than 200 characters")
    return target


def as_session_id(session: Any) -> uuid.UUID | None:
    if session is None:
        return None
    value = getattr(session, "pk", session)
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError as exc:
        raise InvalidAuditEvent(f"session must be a KioskSession or its UUID: {exc}") from None


def _check_keys(value: Any, path: str) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            if not isinstance(key, str):
                raise InvalidAuditEvent(f"details keys must be strings ({path})")
            if key.lower() in FORBIDDEN_DETAIL_KEYS:
                raise InvalidAuditEvent(
                    f"details.{path}{key}: frames, images and landmarks are never audited"
                )
            _check_keys(inner, f"{path}{key}.")
    elif isinstance(value, list):
        for inner in value:
            _check_keys(inner, path)


def clean_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """A JSON object that survives the database unchanged (so its hash stays valid)."""
    if details is None:
        return {}
    if not isinstance(details, Mapping):
        raise InvalidAuditEvent(f"details must be a JSON object, not {type(details).__name__}")
    try:
        encoded = json.dumps(dict(details), ensure_ascii=False, allow_nan=False, default=_refuse)
    except (TypeError, ValueError) as exc:
        raise InvalidAuditEvent(f"details are not plain JSON: {exc}") from None
    if len(encoded.encode("utf-8")) > MAX_DETAILS_BYTES:
        raise InvalidAuditEvent(f"details are larger than {MAX_DETAILS_BYTES} bytes")
    if "\\u0000" in encoded:
        raise InvalidAuditEvent("details must not contain NUL characters")
    cleaned = json.loads(encoded) if _needs_normalising(details) else dict(details)
    _check_keys(cleaned, "")
    return cleaned


def _needs_normalising(value: Any) -> bool:
    """False when ``value`` is already what JSON decoding gives (str keys, lists, plain
    scalars), as for events that arrive as JSON: then the round trip can be skipped."""
    if isinstance(value, Mapping):
        return not isinstance(value, dict) or any(_needs_normalising(v) for v in value.values())
    if isinstance(value, list):
        return any(_needs_normalising(v) for v in value)
    return not (value is None or isinstance(value, str | int | float | bool))


def _refuse(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        return chain.canonical_time(value)
    raise TypeError(f"{type(value).__name__} is not JSON (bytes and arrays are never audited)")


def clean_action(action: Any) -> str:
    if not isinstance(action, str) or not action or len(action) > 64:
        raise InvalidAuditEvent("action must be a string of 1..64 characters, e.g. 'switch.off'")
    return action


@dataclass
class PendingEvent:
    """One event on its way into the chain (validated)."""

    event_id: uuid.UUID
    occurred_at: dt.datetime
    actor_kind: str
    actor: str
    action: str
    target: str = ""
    session_id: uuid.UUID | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_row(self) -> dict[str, Any]:
        """The event's columns, as ``AuditOutbox`` and ``AuditEvent`` name them."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_row(cls, row: Any) -> PendingEvent:
        """The event an ``AuditOutbox`` row holds."""
        return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})


def make_event(
    actor: Any,
    action: str,
    target: Any = "",
    *,
    session: Any = None,
    details: Mapping[str, Any] | None = None,
    event_id: uuid.UUID | str | None = None,
    occurred_at: dt.datetime | None = None,
) -> PendingEvent:
    who = as_actor(actor)
    try:
        eid = uuid.UUID(str(event_id)) if event_id is not None else uuid.uuid4()
    except ValueError:
        raise InvalidAuditEvent(f"event_id {event_id!r} is not a UUID") from None
    when = occurred_at or timezone.now()
    if timezone.is_naive(when):
        raise InvalidAuditEvent("occurred_at must be timezone-aware")
    return PendingEvent(
        event_id=eid,
        occurred_at=when.astimezone(dt.UTC),
        actor_kind=who.kind,
        actor=who.name,
        action=clean_action(action),
        target=as_target(target),
        session_id=as_session_id(session),
        details=clean_details(details),
    )


def event_to_dict(event: PendingEvent) -> dict[str, Any]:
    """The wire form (Celery messages, the media engine's spool)."""
    return {
        "event_id": str(event.event_id),
        "occurred_at": chain.canonical_time(event.occurred_at),
        "actor": f"{event.actor_kind}:{event.actor}",
        "action": event.action,
        "target": event.target,
        "session_id": str(event.session_id) if event.session_id else None,
        "details": event.details,
    }


def event_from_dict(data: Mapping[str, Any]) -> PendingEvent:
    if not isinstance(data, Mapping):
        raise InvalidAuditEvent(f"an event must be a JSON object, not {type(data).__name__}")
    missing = {"event_id", "occurred_at", "actor", "action"} - set(data)
    if missing:
        raise InvalidAuditEvent(f"event lacks {', '.join(sorted(missing))}")
    try:
        when = dt.datetime.fromisoformat(str(data["occurred_at"]).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidAuditEvent(f"occurred_at {data['occurred_at']!r} is not ISO 8601") from None
    return make_event(
        data["actor"],
        data["action"],
        data.get("target") or "",
        session=data.get("session_id"),
        details=data.get("details"),
        event_id=data["event_id"],
        occurred_at=when,
    )


def rejected_event(item: Any, reason: str) -> PendingEvent:
    eid = item.get("event_id") if isinstance(item, Mapping) else None
    try:
        event_id = uuid.uuid5(uuid.NAMESPACE_URL, f"rejected:{uuid.UUID(str(eid))}")
    except ValueError:
        event_id = uuid.uuid4()
    action = item.get("action") if isinstance(item, Mapping) else None
    return make_event(
        Actor.system("audit"),
        "audit.event_rejected",
        "audit",
        details={
            "reason": reason[:500],
            "event_id": str(eid)[:64] if eid is not None else None,
            "action": str(action)[:64] if action is not None else None,
        },
        event_id=event_id,
    )


# --- the outbox row (web requests) -------------------------------------------------------


def record_event(
    actor: Any,
    action: str,
    target: Any = "",
    *,
    session: Any = None,
    details: Mapping[str, Any] | None = None,
    occurred_at: dt.datetime | None = None,
) -> uuid.UUID:
    """Record one audit event in the caller's transaction; returns its event id.

    ``actor``: an operator ``User``, a ``Kiosk``, an :class:`Actor`, or a string
    ``"user:alice"`` / ``"kiosk:demo"`` / ``"system:retention"`` (a bare string is a
    system component). ``action``: a short verb such as ``"switch.off"``. ``target``: what
    it was done to (a model instance or a string). ``session``: the KioskSession (or its
    id) it belongs to. ``details``: a small JSON object (never frames, images or
    landmarks). Raises :class:`InvalidAuditEvent` (a ``ValueError``) on bad input, before
    anything is written.

    The event reaches the chain after the transaction commits (a Celery task; the periodic
    sweep catches anything the task missed). If the transaction rolls back, the event is
    gone with the change it described.
    """
    event = make_event(
        actor, action, target, session=session, details=details, occurred_at=occurred_at
    )
    AuditOutbox.objects.create(**event.as_row())
    _relay_after_commit(event.event_id)
    return event.event_id


def _relay_after_commit(event_id: uuid.UUID) -> None:
    """Ask for a relay once the transaction commits; the first callback of a transaction
    carries every event it recorded, the later ones find nothing left to send."""
    connection = transaction.get_connection()
    pending: list[str] | None = getattr(connection, "_audit_pending_relay", None)
    if pending is None:
        pending = connection._audit_pending_relay = []
    pending.append(str(event_id))

    def send() -> None:
        ids = list(pending)
        pending.clear()
        if ids:
            _send_relay(ids)

    transaction.on_commit(send, robust=True)


def _send_relay(event_ids: list[str]) -> None:
    # By name through the Celery app (consent.tasks registers it in every process: see
    # consent/apps.py), so this module does not import the tasks that import it.
    from celery import current_app

    try:
        current_app.tasks[RELAY_TASK].delay(event_ids)
    except Exception as exc:
        # The broker is unreachable or the eager relay failed: the events wait in the
        # outbox, and the periodic sweep relays them. An expected condition during a broker
        # outage: one line per batch, not a traceback per batch.
        log.warning(
            "audit relay of %d event(s) deferred to the sweep: %s: %s",
            len(event_ids),
            type(exc).__name__,
            exc,
        )
