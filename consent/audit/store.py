"""The chain: append validated events (the only writer of ``AuditEvent``) and read its head.

:func:`append_events` serialises appenders on the chain-head row (row lock on PostgreSQL,
the write lock on SQLite) and stores each event id once. Readers that walk the chain are in
``consent/verification.py`` and ``consent/selectors.py``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from consent import chain, chain_head
from consent.audit.events import InvalidAuditEvent, PendingEvent, event_from_dict, rejected_event
from consent.audit_models import AuditAnchor, AuditChainHead, AuditEvent

log = logging.getLogger(__name__)


@dataclass
class AppendResult:
    stored: int = 0
    duplicates: int = 0
    last_seq: int = 0


def _lock_head() -> AuditChainHead:
    """Take the chain's lock and return the head (recreated from the rows when missing)."""
    now = timezone.now()
    if not AuditChainHead.objects.filter(pk=1).update(updated_at=now):
        seq, head_hash = _derive_head()
        AuditChainHead.objects.bulk_create(
            [AuditChainHead(pk=1, seq=seq, hash=head_hash)], ignore_conflicts=True
        )
        AuditChainHead.objects.filter(pk=1).update(updated_at=now)
    return AuditChainHead.objects.get(pk=1)


def _derive_head() -> tuple[int, str]:
    last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    if last:
        return last
    anchor = AuditAnchor.objects.order_by("-first_seq").first()
    if anchor:
        return anchor.first_seq - 1, anchor.prev_hash
    return 0, chain.GENESIS_HASH


def append_events(events: Iterable[PendingEvent]) -> AppendResult:
    """Append events to the chain in one transaction; an event id already stored is skipped.

    Appenders are serialised on the chain-head row, so each row's ``prev_hash`` is the row
    before it and ``seq`` stays contiguous. Call inside or outside a transaction.
    """
    batch = list(events)
    result = AppendResult()
    if not batch:
        return result
    with transaction.atomic():
        head = _lock_head()
        ids = [e.event_id for e in batch]
        stored = set(AuditEvent.objects.filter(event_id__in=ids).values_list("event_id", flat=True))
        seq, prev = head.seq, head.hash
        recorded_at = timezone.now()
        rows = []
        for event in batch:
            if event.event_id in stored:
                result.duplicates += 1
                continue
            stored.add(event.event_id)
            seq += 1
            values = {
                **event.as_row(),
                "seq": seq,
                "recorded_at": recorded_at,
                "prev_hash": prev,
            }
            prev = values["hash"] = chain.row_hash(values)
            rows.append(values)
        if rows:
            _insert(rows)
            AuditChainHead.objects.filter(pk=1).update(seq=seq, hash=prev)
            chain_head.sign_head_after_commit(seq, prev)
        result.stored = len(rows)
        result.last_seq = seq
    return result


_COPY_COLUMNS = chain.STORED_FIELDS


def _insert(rows: list[dict[str, Any]]) -> None:
    """Insert chain rows: PostgreSQL's COPY (several times faster than an INSERT of many
    rows through the ORM), an ORM bulk insert elsewhere."""
    connection = transaction.get_connection()
    if connection.vendor != "postgresql":
        AuditEvent.objects.bulk_create([AuditEvent(**row) for row in rows], batch_size=500)
        return
    # The rows as COPY's text format, built here in one string: several times faster than
    # adapting each value through psycopg's write_row.
    lines = []
    for row in rows:
        fields = []
        for column in _COPY_COLUMNS:
            value = row[column]
            if value is None:
                fields.append("\\N")
                continue
            if column == "details":
                value = json.dumps(value, ensure_ascii=False, allow_nan=False)
            elif column in ("occurred_at", "recorded_at"):
                value = chain.canonical_time(value)
            fields.append(_copy_escape(str(value)))
        lines.append("\t".join(fields))
    data = ("\n".join(lines) + "\n").encode("utf-8")
    statement = f"COPY consent_auditevent ({', '.join(_COPY_COLUMNS)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        copy.write(data)


def _copy_escape(text: str) -> str:
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = (
            text.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return text


def ingest_event_dicts(items: Iterable[Any]) -> AppendResult:
    """Validate wire-form events (media engine) and append them; bad ones are recorded as
    ``audit.event_rejected`` with the reason, so nothing is silently lost."""
    events = []
    for item in items:
        try:
            events.append(event_from_dict(item))
        except InvalidAuditEvent as exc:
            log.warning("rejected audit event: %s", exc)
            events.append(rejected_event(item, str(exc)))
    return append_events(events)
