from django.contrib import admin

from kiosk.models import FusionSwitch, Kiosk


@admin.register(Kiosk)
class KioskAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "location", "engine", "fusion_enabled")
    search_fields = ("slug", "name", "location")


@admin.register(FusionSwitch)
class FusionSwitchAdmin(admin.ModelAdmin):
    list_display = ("enabled", "reason", "changed_by", "changed_at")
