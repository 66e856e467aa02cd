from django.contrib import admin

from kiosk.dashboard.admin_audit import AuditedAdmin
from kiosk.models import FusionSwitch, Kiosk


@admin.register(Kiosk)
class KioskAdmin(AuditedAdmin):
    list_display = ("slug", "name", "location", "engine", "fusion_enabled")
    search_fields = ("slug", "name", "location")
    # The switch changes only through the dashboard (kiosk.switch): audited, with a
    # reason, and announced to the media workers.
    readonly_fields = ("fusion_enabled", "fusion_reason")


@admin.register(FusionSwitch)
class FusionSwitchAdmin(admin.ModelAdmin):
    list_display = ("enabled", "reason", "changed_by", "changed_at")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
