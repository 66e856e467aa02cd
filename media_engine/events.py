"""Media events (session start and end, engine, resolution change, error) for the audit trail.

``emit`` is the one call the media engine makes; what happens to an event lies behind it. An
event is logged as one line of plain words and numbers, and kept in the audit trail: written
first to this process's durable spool, then sent through Celery into PostgreSQL (see
media_engine/audit_spool.py; ``AUDIT_MEDIA_EVENTS=0`` turns that off). Never pass frame,
landmark or image data as details: only names, ids, sizes, counts and reasons.
"""

import logging
import os
from typing import Any

logger = logging.getLogger("media_engine.events")

EVENTS = (
    "session.started",
    "session.ended",
    "session.paused",
    "session.resumed",
    "session.engine",
    "session.resolution",
    "session.error",
    "worker.started",
    "worker.stopped",
)
_DETAIL_TYPES = (str, int, float, bool, type(None))


def emit(event: str, *, session_id: str | None, kiosk: str | None, **details: Any) -> None:
    """Record one media event. Details must be plain values (str, int, float, bool, None,
    or lists/tuples of them)."""
    if event not in EVENTS:
        raise ValueError(f"unknown media event {event!r}; known: {', '.join(EVENTS)}")
    for key, value in details.items():
        values = value if isinstance(value, list | tuple) else (value,)
        if not all(isinstance(v, _DETAIL_TYPES) for v in values):
            raise TypeError(f"media event detail {key!r} must be a plain value, not {type(value)}")
    logger.info(
        "%s session=%s kiosk=%s %s",
        event,
        session_id,
        kiosk,
        " ".join(f"{k}={v}" for k, v in sorted(details.items())),
        extra={"session_id": session_id},
    )
    if not audited():
        return
    try:
        from media_engine import audit_spool

        audit_spool.submit(
            event,
            session_id=session_id,
            kiosk=kiosk,
            details={k: list(v) if isinstance(v, tuple) else v for k, v in details.items()},
        )
    except Exception:
        # The spool is a local file: failing to write it (disk full) is logged loudly, and
        # never takes the visitor's session down.
        logger.exception("media event %s could not be kept for the audit trail", event)


def audited() -> bool:
    return os.environ.get("AUDIT_MEDIA_EVENTS", "1").strip().lower() not in {"0", "false", "no"}
