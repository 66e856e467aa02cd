"""Writes about kiosks (plain functions; views and consumers stay thin)."""

from dataclasses import dataclass

from django.db import transaction

from consent.models import EndReason, KioskSession
from consent.services import (
    end_kiosk_session,
    end_live_sessions,
    fail_over_kiosk_session,
    record_worker,
    start_kiosk_session,
    withdraw_consent,
)
from kiosk import calls, devices, limits, selectors
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


def finish_kiosk_session(
    session_id: str, reason: str, detail: str = "", release_kiosk_id: int | None = None
) -> None:
    """Record the end of a visit once (a later call keeps the first reason); free the
    kiosk's one-call claim when the visit held it."""
    if release_kiosk_id is not None:
        calls.release(release_kiosk_id, session_id)
    if reason == EndReason.WITHDRAWN:
        withdraw_consent(session_id, detail=detail)
    else:
        end_kiosk_session(session_id, reason, detail)


def fail_over(
    session_id: str, detail: str, claimed_kiosk_id: int | None = None
) -> KioskSession | None:
    """The visit's media worker died: a new session row with the same consent, or ``None``
    when the consent no longer holds (the old one is ended as an error either way).

    The failed-over call is the same kiosk's call: its one-call claim (``claimed_kiosk_id``)
    passes to the new session row, so the re-offer is not refused as ``kiosk_busy``."""
    session = fail_over_kiosk_session(session_id, detail)
    if session is not None and claimed_kiosk_id is not None:
        calls.transfer(claimed_kiosk_id, session_id, str(session.pk))
    return session


def record_kiosk_worker(session_id: str, worker: str) -> None:
    """Note which media worker took the visit's call."""
    record_worker(session_id, worker)


@dataclass(frozen=True)
class Admission:
    """Why a signaling socket may (or may not) go on: an error code, or the kiosk's facts."""

    error: str = ""
    kiosk: Kiosk | None = None
    device_id: int | None = None
    greeting: dict | None = None


def admit_kiosk_socket(slug: str, token: str | None, address: str) -> Admission:
    """The checks at a kiosk socket's connect, in order: rate, kiosk, device credential."""
    if not limits.allow("connect", slug[:64], address):
        return Admission(error="rate_limited")
    kiosk = selectors.get_kiosk(slug)
    if kiosk is None:
        return Admission(error="unknown_kiosk")
    device = devices.authenticate(slug, token)
    if device is None:
        return Admission(error="not_enrolled", kiosk=kiosk)
    devices.touch(device.pk)
    return Admission(kiosk=kiosk, device_id=device.pk, greeting=selectors.kiosk_greeting(kiosk))


def admit_visit(kiosk: Kiosk, device_id: int | None, address: str) -> str:
    """ "" when a visit (a consent answer) may start now, else the error code."""
    if device_id is None or not devices.still_active(device_id):
        return "not_enrolled"
    if not limits.allow("consent", kiosk.slug, address):
        return "rate_limited"
    return ""


def admit_call(kiosk: Kiosk, device_id: int | None, session_id: str) -> str:
    """ "" when the offer may go to a media worker (this kiosk's one call), else the code."""
    if device_id is None or not devices.still_active(device_id):
        return "not_enrolled"
    claim = calls.claim(kiosk, session_id, device_id)
    if not claim:
        return "kiosk_busy"
    if claim.displaced:
        end_displaced_call(claim.displaced)
    return ""


def end_displaced_call(session_id: str) -> None:
    """The session whose stale claim a new call took over (its daphne died without a word)
    ends as a lost connection, and every media worker stops whatever still runs of it."""
    detail = "its signaling stopped; the kiosk's next call took over"
    with transaction.atomic():
        end_kiosk_session(session_id, EndReason.DISCONNECT, detail)
        end_live_sessions(session_id=session_id, reason=EndReason.DISCONNECT, detail=detail)
