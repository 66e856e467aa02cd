"""Who did what and why: every staff action goes into the audit trail through here.

One place that turns a dashboard action into an audit event (consent.audit.record_event),
so that every service records the actor, the reason and the kiosk the same way:
``details.reason`` is the staff member's reason and ``details.kiosk`` the kiosk's slug
(the audit search's kiosk filter reads it). Call it inside the transaction of the change
it describes: the event is written to the audit outbox in that transaction, so the change
and its record commit together or not at all.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

REASON_MAX_LENGTH = 500


def record_staff_action(
    user: AbstractBaseUser,
    action: str,
    *,
    target: str,
    reason: str,
    kiosk: str | None = None,
    session_id: uuid.UUID | str | None = None,
    details: dict[str, Any] | None = None,
) -> uuid.UUID:
    """Record ``action`` by ``user`` on ``target`` with their ``reason``; returns the
    event id. Raises consent.audit.InvalidAuditEvent (a ValueError) on bad input."""
    from consent.audit import record_event

    payload: dict[str, Any] = {**(details or {}), "reason": reason}
    if kiosk:
        payload["kiosk"] = kiosk
    return record_event(user, action, target, session=session_id, details=payload)


def clean_reason(reason: str | None) -> str:
    """A staff action's reason: required, trimmed, at most 500 characters."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(_("A reason is required."), code="reason_required")
    if len(reason) > REASON_MAX_LENGTH:
        raise ValidationError(
            _("The reason is too long (at most %(n)d characters).") % {"n": REASON_MAX_LENGTH},
            code="reason_too_long",
        )
    return reason
