"""Django admin changes go into the audit trail too (who changed which object, and how).

Mix ``AuditedAdmin`` into a ModelAdmin: its log methods, which Django calls inside the
admin's transaction, also record an ``admin.add`` / ``admin.change`` / ``admin.delete``
event with the admin's own change message.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User

from kiosk.dashboard.staff_audit import record_staff_action


def _message(message: Any) -> str:
    if isinstance(message, list):
        message = json.dumps(message, ensure_ascii=False)
    return str(message or "")[:500]


def _object_name(obj: Any) -> str:
    """What the audit names the object by; a consent of a depicted person is named by its id
    only (its name in Django would carry the person's name and document reference)."""
    if obj._meta.label_lower == "consent.identityconsent":
        return f"identity consent {obj.pk}"
    return str(obj)[:200]


class AuditedAdmin(admin.ModelAdmin):
    def _audit(self, request, obj, action: str, message: Any) -> None:
        kiosk = getattr(obj, "slug", None) if obj._meta.label_lower == "kiosk.kiosk" else None
        record_staff_action(
            request.user,
            action,
            target=f"{obj._meta.label_lower}:{obj.pk}",
            reason=_message(message) or "(Django admin)",
            kiosk=kiosk,
            details={"object": _object_name(obj), "via": "admin"},
        )

    def log_addition(self, request, obj, message):
        self._audit(request, obj, "admin.add", message)
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        self._audit(request, obj, "admin.change", message)
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        for obj in queryset:
            self._audit(request, obj, "admin.delete", "deleted")
        return super().log_deletions(request, queryset)


class AuditedUserAdmin(AuditedAdmin, UserAdmin):
    pass


class AuditedGroupAdmin(AuditedAdmin, GroupAdmin):
    pass


def audit_auth_admin() -> None:
    """Replace the stock User and Group admins by audited ones."""
    for model, model_admin in ((User, AuditedUserAdmin), (Group, AuditedGroupAdmin)):
        if admin.site.is_registered(model):
            admin.site.unregister(model)
        admin.site.register(model, model_admin)
