"""Enrolled kiosk devices: enrolment codes, device credentials, rotation, revocation.

A kiosk is a device. An administrator enrols it (dashboard "Kiosks" page or
``manage.py kiosk_enrol``) and gets a one-time link; opening the link on the device stores
a long-lived credential in an HttpOnly cookie. The server keeps only SHA-256 hashes of
codes and tokens (both are 256-bit random, so a plain hash is enough). Every step is
audited; revocation also ends the device's live calls at once (docs/security.md, "Kiosks").
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from consent.audit import record_event
from consent.models import EndReason
from kiosk.models import Kiosk, KioskDevice, KioskEnrolment
from media_engine import protocol
from media_engine.protocol import CONTROL_GROUP

logger = logging.getLogger(__name__)

TOKEN_BYTES = 32


class EnrolmentRefused(Exception):
    """The enrolment code is unknown, used or expired (one message for all three)."""


@dataclass(frozen=True)
class Enrolment:
    kiosk: Kiosk
    code: str  # shown once; only its hash is stored
    expires_at: dt.datetime

    def path(self) -> str:
        return f"/kiosk/{self.kiosk.slug}/enrol/{self.code}/"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


def kiosk_group(slug: str) -> str:
    """The channel-layer group of a kiosk's signaling sockets (revocation closes them)."""
    return "kiosk-device." + sha256(slug)[:32]


def issue_enrolment(kiosk: Kiosk, actor: Any) -> Enrolment:
    """A new one-time enrolment code for ``kiosk`` (valid KIOSK_ENROLMENT_TTL_S), audited."""
    code = secrets.token_urlsafe(TOKEN_BYTES)
    expires_at = timezone.now() + dt.timedelta(seconds=settings.KIOSK_ENROLMENT_TTL_S)
    with transaction.atomic():
        row = KioskEnrolment.objects.create(
            kiosk=kiosk,
            code_sha256=sha256(code),
            created_by=str(getattr(actor, "username", actor))[:150],
            expires_at=expires_at,
        )
        record_event(
            actor,
            "kiosk.enrolment_issued",
            f"kiosk:{kiosk.slug}",
            details={
                "kiosk": kiosk.slug,
                "enrolment": row.pk,
                "expires_at": expires_at.isoformat(),
            },
        )
    return Enrolment(kiosk=kiosk, code=code, expires_at=expires_at)


def redeem_enrolment(slug: str, code: str, label: str = "") -> tuple[KioskDevice, str]:
    """Turn a one-time code into a device credential; returns the device and its token."""
    now = timezone.now()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with transaction.atomic():
        enrolment = (
            KioskEnrolment.objects.select_for_update()
            .select_related("kiosk")
            .filter(code_sha256=sha256(code), kiosk__slug=slug)
            .first()
        )
        if enrolment is None or enrolment.used_at is not None or enrolment.expires_at <= now:
            raise EnrolmentRefused("This enrolment link is unknown, used or expired.")
        enrolment.used_at = now
        enrolment.save(update_fields=["used_at"])
        device = KioskDevice.objects.create(
            kiosk=enrolment.kiosk, token_sha256=sha256(token), label=label[:200], rotated_at=now
        )
        record_event(
            enrolment.kiosk,
            "kiosk.device_enrolled",
            f"kiosk-device:{device.pk}",
            details={"kiosk": slug, "device": device.pk, "enrolment": enrolment.pk},
        )
    return device, token


def authenticate(slug: str, token: str | None) -> KioskDevice | None:
    """The active device of kiosk ``slug`` that holds ``token``, or None."""
    if not token or len(token) > 128:
        return None
    return (
        KioskDevice.objects.select_related("kiosk")
        .filter(token_sha256=sha256(token), kiosk__slug=slug, revoked_at__isnull=True)
        .first()
    )


def still_active(device_id: int) -> bool:
    return KioskDevice.objects.filter(pk=device_id, revoked_at__isnull=True).exists()


def rotation_due(device: KioskDevice) -> bool:
    age = (timezone.now() - device.rotated_at).total_seconds()
    return age >= settings.KIOSK_DEVICE_ROTATE_AFTER_S


def rotate(device: KioskDevice) -> str:
    """A new token for ``device`` (the old one stops working at once), audited."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with transaction.atomic():
        KioskDevice.objects.filter(pk=device.pk).update(
            token_sha256=sha256(token), rotated_at=timezone.now()
        )
        record_event(
            device.kiosk,
            "kiosk.device_rotated",
            f"kiosk-device:{device.pk}",
            details={"kiosk": device.kiosk.slug, "device": device.pk},
        )
    return token


def touch(device_id: int) -> None:
    KioskDevice.objects.filter(pk=device_id).update(last_seen_at=timezone.now())


def revoke(device: KioskDevice, actor: Any, reason: str) -> None:
    """Revoke ``device``: its signaling is refused from now on and its live calls end."""
    with transaction.atomic():
        updated = KioskDevice.objects.filter(pk=device.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_by=str(getattr(actor, "username", actor))[:150]
        )
        if not updated:
            return
        record_event(
            actor,
            "kiosk.device_revoked",
            f"kiosk-device:{device.pk}",
            details={"kiosk": device.kiosk.slug, "device": device.pk, "reason": reason[:500]},
        )
        slug, device_id = device.kiosk.slug, device.pk
        transaction.on_commit(lambda: announce_revocation(slug, device_id, reason))


def announce_revocation(slug: str, device_id: int, reason: str) -> None:
    """Close the device's sockets and end its calls through ``sessions.end`` (every worker)."""
    from kiosk.calls import live_session_of_device

    layer = get_channel_layer()
    if layer is None:
        return
    detail = f"kiosk device credential revoked: {reason}"[:500]
    try:
        async_to_sync(layer.group_send)(
            kiosk_group(slug), {"type": "kiosk.revoked", "device": device_id, "detail": detail}
        )
        session_id = live_session_of_device(device_id)
        if session_id:
            async_to_sync(layer.group_send)(
                CONTROL_GROUP,
                protocol.sessions_end(
                    session_id=session_id, reason=EndReason.OPERATOR.value, detail=detail
                ),
            )
    except Exception:
        logger.exception("could not announce the revocation of device %s", device_id)


def active_devices(kiosk: Kiosk) -> list[KioskDevice]:
    return list(kiosk.devices.filter(revoked_at__isnull=True))
