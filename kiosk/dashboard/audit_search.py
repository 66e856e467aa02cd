"""Searching the audit trail: filters, keyset pages and streaming exports.

Pages are keyset pages on (occurred_at, seq), newest first: a page is "the 50 events
before this (time, seq)", which PostgreSQL answers from an index however deep the page
is; there is no OFFSET and no COUNT(*). Each filter has an index that starts with it and
continues with (occurred_at, seq) (migrations dashboard 0002/0003; the unfiltered pages use
the audit trail's own index on occurred_at), so a filtered page reads only the rows it
shows (bench/audit_search.py prints the plans). The kiosk filter reads
``details->>'kiosk'``: events about a kiosk carry its slug there (dashboard.staff_audit
does).
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone
from django.utils.translation import gettext as _

from consent import pii
from consent.chain import STORED_FIELDS
from consent.models import AuditEvent, IdentityConsent

PAGE_SIZE = 50
EXPORT_CHUNK = 1000
# The actions the search form suggests (any action can be typed).
KNOWN_ACTIONS = (
    "switch.off",
    "switch.on",
    "session.end",
    "session.started",
    "session.ended",
    "session.paused",
    "session.resumed",
    "consent.revoke",
    "consent.withdrawn",
    "identity_consent.recorded",
    "identity_consent.revoked",
    "proof.exported",
    "audit.export",
    "admin.add",
    "admin.change",
    "admin.delete",
    "staff.locked_out",
    "staff.second_factor_enrolled",
)


class BadSearch(ValueError):
    """A search the dashboard cannot run as given (the message says why)."""


@dataclass(frozen=True)
class AuditQuery:
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    kiosk: str = ""
    session: uuid.UUID | None = None
    actor: str = ""
    action: str = ""

    def as_params(self) -> dict[str, str]:
        params = {
            "since": _format_time(self.since),
            "until": _format_time(self.until),
            "kiosk": self.kiosk,
            "session": str(self.session) if self.session else "",
            "actor": self.actor,
            "action": self.action,
        }
        return {k: v for k, v in params.items() if v}

    def as_details(self) -> dict[str, str]:
        return self.as_params()


@dataclass
class AuditPage:
    events: list[Any]
    older: str | None  # cursor of the next (older) page
    newer: str | None  # cursor of the previous (newer) page
    query: AuditQuery = field(default_factory=AuditQuery)


def _format_time(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M") if value else ""


# Times the search accepts: far enough either way for any real event, and far from the
# ends of Python's and the database's calendars (year 1 and 9999 overflow in a conversion).
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)
PARAMETERS = ("since", "until", "kiosk", "session", "actor", "action", "before", "after")
MAX_PARAMETER_CHARS = 400


def _checked_text(params: Any, name: str) -> str:
    """A parameter as text, refused when it holds control characters (NUL included: the
    database cannot store or compare it) or is absurdly long."""
    value = params.get(name) or ""
    if not isinstance(value, str):
        value = str(value)
    if len(value) > MAX_PARAMETER_CHARS:
        raise BadSearch(_("%(name)s is too long.") % {"name": name})
    if any(ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0 for ch in value):
        raise BadSearch(_("%(name)s contains control characters.") % {"name": name})
    return value.strip()


def _in_range(value: dt.datetime) -> dt.datetime | None:
    if timezone.is_naive(value):
        value = value.replace(tzinfo=dt.UTC)
    try:
        value = value.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        return None
    return value if EARLIEST <= value <= LATEST else None


def _parse_time(raw: str, name: str) -> dt.datetime | None:
    if not raw:
        return None
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        message = _("%(name)s is not a date and time (YYYY-MM-DDTHH:MM).") % {"name": name}
        raise BadSearch(message) from None
    checked = _in_range(value)
    if checked is None:
        message = _("%(name)s must be between 1970 and 9000.") % {"name": name}
        raise BadSearch(message)
    return checked


def parse_query(params: Any) -> AuditQuery:
    """The search form (GET parameters) as a query; BadSearch says what is wrong."""
    text = {name: _checked_text(params, name) for name in PARAMETERS}
    since = _parse_time(text["since"], _("From"))
    until = _parse_time(text["until"], _("Until"))
    if since and until and since > until:
        raise BadSearch(_("“From” is after “Until”."))
    session = None
    if text["session"]:
        try:
            session = uuid.UUID(text["session"])
        except ValueError:
            raise BadSearch(_("The session is not a session id (a UUID).")) from None
    fields = {}
    for name, limit in (("kiosk", 64), ("actor", 200), ("action", 64)):
        if len(text[name]) > limit:
            raise BadSearch(_("%(name)s is too long.") % {"name": name})
        fields[name] = text[name]
    return AuditQuery(since=since, until=until, session=session, **fields)


def filtered(query: AuditQuery) -> list[QuerySet]:
    """The matching events as one or more index-friendly querysets ("branches") whose union
    is the result: the kiosk filter is two branches, events that name the kiosk in
    ``details.kiosk`` and events whose target is ``kiosk:<slug>``, each with its own index
    (an OR in one query would sort every match of both)."""
    events = AuditEvent.objects.all()
    if query.since:
        events = events.filter(occurred_at__gte=query.since)
    if query.until:
        events = events.filter(occurred_at__lte=query.until)
    if query.session:
        events = events.filter(session_id=query.session)
    if query.actor:
        kind, sep, name = query.actor.partition(":")
        if sep and kind in ("user", "kiosk", "system"):
            events = events.filter(actor_kind=kind, actor=name)
        else:
            events = events.filter(actor=query.actor)
    if query.action:
        events = events.filter(action=query.action)
    if not query.kiosk:
        return [events]
    if connection.vendor == "postgresql":
        # details->>'kiosk', the expression of the kiosk index (migration dashboard 0003).
        by_details = events.alias(kiosk_key=KeyTextTransform("kiosk", "details")).filter(
            kiosk_key=query.kiosk
        )
    else:
        # Django's KeyTextTransform comparison is broken on SQLite ("malformed JSON").
        by_details = events.filter(details__kiosk=query.kiosk)
    return [by_details, events.filter(target=f"kiosk:{query.kiosk}")]


def encode_cursor(occurred_at: dt.datetime, seq: int) -> str:
    raw = f"{occurred_at.astimezone(dt.UTC).isoformat()}|{seq}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


MAX_SEQ = 2**63 - 1  # a bigint


def decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    damaged = BadSearch(_("The page link is damaged; start the search again."))
    if len(cursor) > 200:
        raise damaged
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, seq_text = raw.split("|")
        value = dt.datetime.fromisoformat(when)
        seq = int(seq_text)
    except (ValueError, UnicodeDecodeError):
        raise damaged from None
    if timezone.is_naive(value) or not 0 <= seq <= MAX_SEQ:
        raise damaged
    checked = _in_range(value)
    if checked is None:
        raise damaged
    return checked, seq


def _older_than(events: QuerySet, when: dt.datetime, seq: int) -> QuerySet:
    # (occurred_at, seq) < (when, seq), written so that the index range is on occurred_at.
    return events.filter(occurred_at__lte=when).filter(Q(occurred_at__lt=when) | Q(seq__lt=seq))


def _newer_than(events: QuerySet, when: dt.datetime, seq: int) -> QuerySet:
    return events.filter(occurred_at__gte=when).filter(Q(occurred_at__gt=when) | Q(seq__gt=seq))


def _key(event: Any) -> tuple[dt.datetime, int]:
    return (event.occurred_at, event.seq)


def _merged(branches: list[QuerySet], limit: int, *, newest_first: bool) -> list[Any]:
    """The first ``limit`` events of the branches' union, in keyset order, each once."""
    order = ("-occurred_at", "-seq") if newest_first else ("occurred_at", "seq")
    seen: dict[int, Any] = {}
    for branch in branches:
        for event in branch.order_by(*order)[:limit]:
            seen[event.seq] = event
    return sorted(seen.values(), key=_key, reverse=newest_first)[:limit]


def search(
    query: AuditQuery, *, before: str = "", after: str = "", size: int = PAGE_SIZE
) -> AuditPage:
    """One page of events, newest first. ``before``: the page after that cursor (older);
    ``after``: the page before it (newer)."""
    branches = filtered(query)
    if after:
        when, seq = decode_cursor(after)
        newer = [_newer_than(b, when, seq) for b in branches]
        rows = _merged(newer, size + 1, newest_first=False)
        has_more_newer = len(rows) > size
        rows = list(reversed(rows[:size]))
        older = encode_cursor(*_key(rows[-1])) if rows else None
        newer_cursor = encode_cursor(*_key(rows[0])) if rows and has_more_newer else None
        return AuditPage(rows, older=older, newer=newer_cursor, query=query)
    if before:
        when, seq = decode_cursor(before)
        branches = [_older_than(b, when, seq) for b in branches]
    rows = _merged(branches, size + 1, newest_first=True)
    has_more = len(rows) > size
    rows = rows[:size]
    older = encode_cursor(*_key(rows[-1])) if rows and has_more else None
    newer_cursor = encode_cursor(*_key(rows[0])) if rows and before else None
    return AuditPage(rows, older=older, newer=newer_cursor, query=query)


def iter_results(query: AuditQuery, chunk: int = EXPORT_CHUNK) -> Iterator[Any]:
    """Every matching event, newest first, read in keyset chunks (constant memory)."""
    branches = filtered(query)
    cursor: tuple[dt.datetime, int] | None = None
    while True:
        pages = branches if cursor is None else [_older_than(b, *cursor) for b in branches]
        rows = _merged(pages, chunk, newest_first=True)
        yield from rows
        if len(rows) < chunk:
            return
        cursor = _key(rows[-1])


EXPORT_FIELDS = STORED_FIELDS


def for_reader(event: Any, reveal_personal: bool) -> Any:
    """The event as this reader may see it: personal identifiers only for those who may read
    consents (``consent.pii``)."""
    return event if reveal_personal else pii.masked(event)


def personal_data(event: Any) -> dict[str, str] | None:
    """For readers of consents: the person an identity-consent event is about, from the
    consent record (the audit row itself holds only keyed hashes)."""
    if event.action != "identity_consent.recorded" or not isinstance(event.details, dict):
        return None
    consent_id = event.details.get("identity_consent")
    if not isinstance(consent_id, int):
        return None
    record = (
        IdentityConsent.objects.filter(pk=consent_id)
        .values("person_name", "document_reference")
        .first()
    )
    return dict(record) if record else None


def export_row(event: Any) -> dict[str, Any]:
    """An event as plain JSON values, with its hashes (so the export can be re-verified;
    a masked row no longer matches its hash, by design)."""
    row = {}
    for name in EXPORT_FIELDS:
        value = getattr(event, name)
        if isinstance(value, dt.datetime):
            value = value.astimezone(dt.UTC).isoformat()
        elif isinstance(value, uuid.UUID):
            value = str(value)
        row[name] = value
    return row
