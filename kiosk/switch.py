"""The one-click disable: switch face fusion off (or on) everywhere or for one kiosk.

The database row is the truth (``FusionSwitch`` pk=1 and ``Kiosk.fusion_enabled``); it
survives restarts of every process. A change is written, audited in the same transaction,
and, once committed, announced to every media worker with a ``fusion.switch`` message on
``CONTROL_GROUP`` so that they re-read the row at once instead of at their next periodic
re-read. Workers fail closed when they cannot read it (kiosk.selectors.fusion_allowed).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction

from kiosk import broadcast
from kiosk.dashboard.roles import OPERATE_SWITCH
from kiosk.dashboard.staff_audit import clean_reason, record_staff_action
from kiosk.models import FusionSwitch, Kiosk
from media_engine import protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SwitchChange:
    kiosk: str | None  # None: the global switch
    enabled: bool
    was_enabled: bool
    reason: str


def set_fusion(
    user: AbstractBaseUser, *, enabled: bool, reason: str, kiosk: Kiosk | None = None
) -> SwitchChange:
    """Switch face fusion on or off, globally (``kiosk=None``) or for one kiosk."""
    if not user.has_perm(OPERATE_SWITCH):
        raise PermissionDenied("only operators may switch face fusion")
    reason = clean_reason(reason)
    with transaction.atomic():
        if kiosk is None:
            switch, _created = FusionSwitch.objects.select_for_update().get_or_create(pk=1)
            was_enabled = switch.enabled
            switch.enabled = enabled
            switch.reason = reason
            switch.changed_by = user.get_username()[:150]
            switch.save()
            target, slug = "switch:global", None
        else:
            row = Kiosk.objects.select_for_update().get(pk=kiosk.pk)
            was_enabled = row.fusion_enabled
            row.fusion_enabled = enabled
            row.fusion_reason = reason
            row.save(update_fields=["fusion_enabled", "fusion_reason"])
            kiosk.fusion_enabled, kiosk.fusion_reason = enabled, reason
            target, slug = f"kiosk:{row.slug}", row.slug
        # Registered before the audit event's own relay callback, so that the workers hear
        # of the change first (on_commit callbacks run in the order they were registered).
        # (through announce_switch, which bench/killswitch.py times and can silence)
        transaction.on_commit(lambda: announce_switch(slug, enabled), robust=True)
        record_staff_action(
            user,
            "switch.on" if enabled else "switch.off",
            target=target,
            reason=reason,
            kiosk=slug,
            details={"enabled": enabled, "was_enabled": was_enabled, "scope": slug or "global"},
        )
    return SwitchChange(kiosk=slug, enabled=enabled, was_enabled=was_enabled, reason=reason)


def disable_fusion(user: AbstractBaseUser, reason: str, kiosk: Kiosk | None = None) -> SwitchChange:
    return set_fusion(user, enabled=False, reason=reason, kiosk=kiosk)


def enable_fusion(user: AbstractBaseUser, reason: str, kiosk: Kiosk | None = None) -> SwitchChange:
    return set_fusion(user, enabled=True, reason=reason, kiosk=kiosk)


def announce_switch(kiosk_slug: str | None, enabled: bool | None = None) -> bool:
    """Tell every media worker to re-read the switch now. The row stays the truth: if
    the channel layer is down, workers still follow at their next periodic re-read.
    ``enabled=False`` lets a worker stop fused video before its re-read (the safe side);
    "on" is only ever believed from the database."""
    return broadcast.to_workers(protocol.fusion_switch(kiosk_slug, enabled))
