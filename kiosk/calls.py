"""One live call per kiosk at a time, agreed through the database by every daphne process.

``claim`` takes the kiosk's call for a session (atomically: a conditional UPDATE), ``beat``
keeps the claim fresh while the call lasts, ``release`` frees it. A claim nobody refreshed
for ``KIOSK_CALL_STALE_S`` (its daphne died) is taken over by the next call.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
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


def claim(kiosk: Kiosk, session_id: str, device_id: int | None) -> bool:
    """Take the kiosk's one call for ``session_id``; False when another call holds it."""
    _ensure_row(kiosk)
    now = timezone.now()
    stale = now - dt.timedelta(seconds=settings.KIOSK_CALL_STALE_S)
    free = Q(session_id="") | Q(heartbeat_at__lt=stale) | Q(session_id=session_id)
    taken = KioskCall.objects.filter(free, kiosk=kiosk).update(
        session_id=session_id, device_id=device_id, heartbeat_at=now
    )
    return taken == 1


def beat(kiosk_id: int, session_id: str) -> None:
    KioskCall.objects.filter(kiosk_id=kiosk_id, session_id=session_id).update(
        heartbeat_at=timezone.now()
    )


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
