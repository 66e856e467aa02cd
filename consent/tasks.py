"""Celery tasks of the audit trail (thin: the work is in consent.audit and friends).

Every task is idempotent by event id, acknowledged only after it finished
(``acks_late``) and handed back to the broker when its worker process dies
(``reject_on_worker_lost``), so a killed worker or a broker restart delivers again and the
chain still stores each event once. Database errors are retried with backoff forever: an
event is never dropped because PostgreSQL was briefly away.
"""

from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError

from consent.audit import outbox, store

RELIABLE = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": True,
    "retry_backoff_max": 30,
    "max_retries": None,
}


@shared_task(name="consent.relay_outbox", **RELIABLE)
def relay_outbox(event_ids: list[str] | None = None) -> int:
    """Relay these outbox events (those already relayed are simply gone)."""
    result = outbox.relay_outbox(event_ids)
    return result.stored


@shared_task(name="consent.sweep_outbox", **RELIABLE)
def sweep_outbox() -> int:
    """Periodic (beat): relay whatever is left in the outbox."""
    return outbox.sweep_outbox()


@shared_task(name="consent.ingest_events", **RELIABLE)
def ingest_events(events: list[dict[str, Any]]) -> int:
    """Append a batch of wire-form events (the media engine's spool sends these)."""
    if not isinstance(events, list):
        events = [events]
    return store.ingest_event_dicts(events).stored


@shared_task(name="consent.write_checkpoint", acks_late=True, reject_on_worker_lost=True)
def write_checkpoint() -> int | None:
    """Periodic (beat): sign the chain head after verifying what was added since."""
    from consent.verification import write_checkpoint as write

    row = write()
    return row.seq if row else None


@shared_task(name="consent.apply_retention", acks_late=True, reject_on_worker_lost=True)
def apply_retention() -> dict[str, int | None]:
    """Periodic (beat, daily): audit rows past AUDIT_RETENTION_DAYS, consent proofs past
    CONSENT_PROOF_RETENTION_DAYS."""
    from consent.retention import prune_audit_trail, prune_consent_proofs

    proofs = prune_consent_proofs()
    result = prune_audit_trail()
    return {
        "audit_rows_pruned": result.pruned,
        "chain_starts_at": result.first_seq,
        **{f"{name}_pruned": count for name, count in proofs.items()},
    }


@shared_task(name="consent.end_expired_sessions", acks_late=True, reject_on_worker_lost=True)
def end_expired_sessions() -> int:
    """Periodic (beat, every few seconds): end the live sessions whose consent expired."""
    from consent.services import end_expired_sessions as end

    return len(end())
