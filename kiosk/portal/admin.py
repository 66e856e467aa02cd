from django.contrib import admin

from kiosk.portal.models import AgentProfile, PortalCall


@admin.register(AgentProfile)
class AgentProfileAdmin(admin.ModelAdmin):
    list_display = ("display_name", "user", "engine", "identity")


@admin.register(PortalCall)
class PortalCallAdmin(admin.ModelAdmin):
    list_display = ("id", "service", "status", "agent", "joined_at", "end_reason")
    list_filter = ("service", "status")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
