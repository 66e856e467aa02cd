"""The audit trail's writing side, one module per job (docs/audit.md):

- ``events``: an event (who did what to what), validated, and :func:`record_event`, which
  writes it as an outbox row in the caller's transaction and asks for a relay on commit;
- ``outbox``: the relay that moves outbox rows into the chain (Celery task and sweep);
- ``store``: the chain itself, :func:`append_events` (its only writer) and ingesting the
  media engine's wire-form events.

The names below are the public API (``consent.audit.record_event`` and friends); import
them from here. Nothing in this package imports ``consent.tasks``: the tasks import it.
"""

from consent.audit.events import (
    Actor,
    InvalidAuditEvent,
    PendingEvent,
    as_actor,
    event_from_dict,
    event_to_dict,
    make_event,
    record_event,
)
from consent.audit.outbox import relay_outbox, sweep_outbox
from consent.audit.store import AppendResult, append_events, ingest_event_dicts

__all__ = [
    "Actor",
    "AppendResult",
    "InvalidAuditEvent",
    "PendingEvent",
    "append_events",
    "as_actor",
    "event_from_dict",
    "event_to_dict",
    "ingest_event_dicts",
    "make_event",
    "record_event",
    "relay_outbox",
    "sweep_outbox",
]
