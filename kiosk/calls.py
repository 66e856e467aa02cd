"""One live call per kiosk at a time, agreed through the database by every daphne process.

``claim`` takes the kiosk's call for a session (atomically: the row is locked), ``beat``
keeps the claim fresh while the call lasts, ``transfer`` hands it to the new session row
of a failed-over call, ``release`` frees it. A claim nobody refreshed
for ``KIOSK_CALL_STALE_S`` (its daphne died) is taken over by the next call, and the claim
says which session it displaced, so that the caller can end it (``kiosk.services``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from kiosk.models import Kiosk, KioskCall


def _ensure_row(kiosk: Kiosk) -> None:
    if KioskCall.objects.filter(kiosk=kiosk).exists():
        return
    try:
        with transaction.atomic():
            KioskCall.objects.create(kiosk=kiosk)
    except IntegrityError:
        pass  # another process made it first


@dataclass(frozen=True)
class Claim:
    """The answer of ``claim``: whether the call is this session's, and which other
    session's stale claim it took over ("" when none)."""

    taken: bool
    displaced: str = ""

    def __bool__(self) -> bool:
        return self.taken


def claim(kiosk: Kiosk, session_id: str, device_id: int | None) -> Claim:
    """Take the kiosk's one call for ``session_id``; not taken when another call holds it."""
    _ensure_row(kiosk)
    now = timezone.now()
    stale = now - dt.timedelta(seconds=settings.KIOSK_CALL_STALE_S)
    with transaction.atomic():
        row = KioskCall.objects.select_for_update().get(kiosk=kiosk)
        holder = row.session_id
        fresh = row.heartbeat_at is not None and row.heartbeat_at >= stale
        if holder and holder != session_id and fresh:
            return Claim(taken=False)
        # conditional as well, for databases without row locks (SQLite, embedded default)
        moved = KioskCall.objects.filter(pk=row.pk, session_id=holder).update(
            session_id=session_id, device_id=device_id, heartbeat_at=now
        )
    if moved != 1:
        return Claim(taken=False)
    return Claim(taken=True, displaced=holder if holder != session_id else "")


def beat(kiosk_id: int, session_id: str) -> None:
    KioskCall.objects.filter(kiosk_id=kiosk_id, session_id=session_id).update(
        heartbeat_at=timezone.now()
    )


def transfer(kiosk_id: int, old_session_id: str, new_session_id: str) -> bool:
    """Hand the kiosk's claim from ``old_session_id`` to ``new_session_id`` (the same call
    after a media worker's fail-over); False when the old session did not hold it."""
    moved = KioskCall.objects.filter(kiosk_id=kiosk_id, session_id=old_session_id).update(
        session_id=new_session_id, heartbeat_at=timezone.now()
    )
    return moved == 1


def release(kiosk_id: int, session_id: str) -> None:
    KioskCall.objects.filter(kiosk_id=kiosk_id, session_id=session_id).update(
        session_id="", device=None, heartbeat_at=None
    )


def live_session_of_device(device_id: int) -> str:
    """The session of the device's live call, or ""."""
    stale = timezone.now() - dt.timedelta(seconds=settings.KIOSK_CALL_STALE_S)
    call = (
        KioskCall.objects.filter(device_id=device_id, heartbeat_at__gte=stale)
        .exclude(session_id="")
        .first()
    )
    return call.session_id if call else ""
