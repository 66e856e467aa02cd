"""Writes about kiosks (plain functions; views and consumers stay thin)."""

from consent.models import EndReason, KioskSession
from consent.services import (
    end_kiosk_session,
    fail_over_kiosk_session,
    record_worker,
    start_kiosk_session,
    withdraw_consent,
)
from kiosk.models import Engine, Kiosk

DEMO_KIOSK_SLUG = "demo"


def ensure_demo_kiosk() -> Kiosk:
    """The kiosk a fresh installation shows, so the service is usable at once."""
    kiosk, _ = Kiosk.objects.get_or_create(
        slug=DEMO_KIOSK_SLUG,
        defaults={"name": "Demo kiosk", "location": "Counter 1", "engine": Engine.AVATAR},
    )
    return kiosk


def begin_kiosk_session(
    kiosk: Kiosk, *, consent_given: bool, language: str, text_sha256: str = ""
) -> KioskSession:
    """The visitor chose on the consent screen: record the session (one place for this call).

    ``consent_given`` False is the path without the digital human: the visit is recorded,
    no camera is used and no face is processed.
    """
    return start_kiosk_session(
        kiosk, consent_given=consent_given, language=language, text_sha256=text_sha256
    )


def finish_kiosk_session(session_id: str, reason: str, detail: str = "") -> None:
    """Record the end of a visit once (a later call keeps the first reason)."""
    if reason == EndReason.WITHDRAWN:
        withdraw_consent(session_id, detail=detail)
    else:
        end_kiosk_session(session_id, reason, detail)


def fail_over(session_id: str, detail: str) -> KioskSession | None:
    """The visit's media worker died: a new session row with the same consent, or ``None``
    when the consent no longer holds (the old one is ended as an error either way)."""
    return fail_over_kiosk_session(session_id, detail)


def record_kiosk_worker(session_id: str, worker: str) -> None:
    """Note which media worker took the visit's call."""
    record_worker(session_id, worker)
