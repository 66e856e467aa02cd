"""The relay: move outbox rows (written by ``record_event``) into the chain.

Run by the ``consent.relay_outbox`` task after each commit and by the periodic
``consent.sweep_outbox`` for anything a relay missed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.db import transaction

from consent.audit.events import PendingEvent
from consent.audit.store import AppendResult, append_events
from consent.audit_models import AuditOutbox

RELAY_BATCH = 500


def relay_outbox(
    event_ids: Iterable[str | uuid.UUID] | None = None, limit: int = RELAY_BATCH
) -> AppendResult:
    """Move outbox rows into the chain and delete them, in one transaction.

    With ``event_ids``: those events (already relayed ones are simply absent). Without:
    the oldest ``limit`` rows (the sweep). Rows another relay holds are skipped.
    """
    with transaction.atomic():
        pending = AuditOutbox.objects.select_for_update(skip_locked=True)
        if event_ids is not None:
            pending = pending.filter(event_id__in=[str(i) for i in event_ids])
        rows = list(pending.order_by("created_at", "occurred_at")[:limit])
        if not rows:
            return AppendResult()
        result = append_events(PendingEvent.from_row(r) for r in rows)
        AuditOutbox.objects.filter(event_id__in=[r.event_id for r in rows]).delete()
    return result


def sweep_outbox(limit: int = RELAY_BATCH, max_batches: int = 100) -> int:
    """Relay everything left in the outbox (the periodic job); returns rows moved."""
    moved = 0
    for _ in range(max_batches):
        result = relay_outbox(None, limit)
        batch = result.stored + result.duplicates
        moved += batch
        if batch < limit:
            break
    return moved
