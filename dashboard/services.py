"""What staff do from the dashboard, besides the switch (kiosk/switch.py)."""

from __future__ import annotations

import logging
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from consent.models import EndReason, KioskSession
from consent.services import end_kiosk_session
from dashboard.roles import END_SESSION
from dashboard.staff_audit import clean_reason, record_staff_action
from media_engine.protocol import CONTROL_GROUP

log = logging.getLogger(__name__)


def end_live_session(
    user: AbstractBaseUser, session_id: uuid.UUID | str, reason: str
) -> KioskSession:
    """End a live kiosk session: recorded as ended by an operator, audited with the
    operator's reason, and every media worker told to stop it (``sessions.end``)."""
    if not user.has_perm(END_SESSION):
        raise PermissionDenied("only operators may end sessions")
    reason = clean_reason(reason)
    with transaction.atomic():
        session = (
            KioskSession.objects.select_for_update()
            .select_related("kiosk")
            .filter(pk=session_id)
            .first()
        )
        if session is None:
            raise ValidationError(_("No such session."), code="unknown_session")
        if session.ended_at is not None:
            raise ValidationError(_("This session has already ended."), code="already_ended")
        sid = str(session.pk)
        transaction.on_commit(lambda: announce_session_end(sid, reason))
        record_staff_action(
            user,
            "session.end",
            target=f"session:{session.pk}",
            reason=reason,
            kiosk=session.kiosk.slug,
            session_id=session.pk,
            details={"worker": session.worker},
        )
        session = end_kiosk_session(session.pk, EndReason.OPERATOR, reason)
    return session


def announce_session_end(session_id: str, detail: str) -> bool:
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        async_to_sync(layer.group_send)(
            CONTROL_GROUP,
            {
                "type": "sessions.end",
                "session_id": session_id,
                "reason": EndReason.OPERATOR.value,
                "detail": detail,
            },
        )
    except Exception:
        log.exception("sessions.end broadcast failed for %s", session_id)
        return False
    return True
