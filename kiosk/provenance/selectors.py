"""Reads for verification: the session behind a tag, and how often someone verified."""

import datetime as dt

from django.db.models import Q
from django.utils import timezone

from consent.audit_models import AuditEvent, AuditOutbox
from consent.models import KioskSession
from media_engine.provenance.payload import Payload, session_tag

VERIFY_ACTION = "provenance.verify"
# A session's minute may sit this far outside its recorded start and end (clocks, rounding).
SLACK = dt.timedelta(minutes=2)


def minute_start(payload: Payload) -> dt.datetime:
    return dt.datetime.fromtimestamp(payload.minute * 60, tz=dt.UTC)


def session_for(payload: Payload, secret: bytes, installation: str) -> KioskSession | None:
    """The session whose keyed tag is ``payload.session_tag`` and that ran in its minute."""
    start = minute_start(payload)
    live = KioskSession.objects.filter(started_at__lte=start + dt.timedelta(minutes=1) + SLACK)
    live = live.filter(Q(ended_at__isnull=True) | Q(ended_at__gte=start - SLACK))
    for session in live.only("id").iterator():
        if session_tag(secret, installation, str(session.id)) == payload.session_tag:
            return session
    return None


def recent_verifications(actor_name: str, seconds: float = 60.0) -> int:
    """Verifications ``actor_name`` made in the last ``seconds`` (audit outbox and chain)."""
    since = timezone.now() - dt.timedelta(seconds=seconds)
    ids = set()
    for model in (AuditOutbox, AuditEvent):
        rows = model.objects.filter(
            action=VERIFY_ACTION, actor_kind="user", actor=actor_name, occurred_at__gte=since
        )
        ids.update(rows.values_list("event_id", flat=True))
    return len(ids)
