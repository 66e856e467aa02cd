from django.contrib import admin

from consent.models import ConsentText, KioskSession


@admin.register(ConsentText)
class ConsentTextAdmin(admin.ModelAdmin):
    list_display = ("purpose", "language", "version", "title", "sha256", "created_at")
    readonly_fields = ("sha256",)


@admin.register(KioskSession)
class KioskSessionAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "kiosk",
        "consent_given",
        "engine",
        "started_at",
        "ended_at",
        "end_reason",
    )
    list_filter = ("end_reason", "engine")
