"""Writes about consent and kiosk sessions (plain functions; consumers call these)."""

import uuid

from django.utils import timezone

from consent.models import EndReason, KioskSession
from kiosk.models import Kiosk


def start_kiosk_session(kiosk: Kiosk, *, consent_given: bool, language: str = "") -> KioskSession:
    return KioskSession.objects.create(
        kiosk=kiosk, consent_given=consent_given, consent_language=language, engine=kiosk.engine
    )


def end_kiosk_session(
    session_id: uuid.UUID | str, reason: str, detail: str = ""
) -> KioskSession | None:
    """Record the end of a session once; later calls keep the first reason."""
    if reason not in EndReason.values:
        raise ValueError(f"unknown end reason {reason!r}")
    updated = KioskSession.objects.filter(pk=session_id, ended_at__isnull=True).update(
        ended_at=timezone.now(), end_reason=reason, end_detail=detail[:500]
    )
    if not updated:
        return KioskSession.objects.filter(pk=session_id).first()
    return KioskSession.objects.get(pk=session_id)


def record_worker(session_id: uuid.UUID | str, worker: str) -> None:
    KioskSession.objects.filter(pk=session_id).update(worker=worker[:200])
