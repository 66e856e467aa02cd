from django.contrib import admin

from consent.models import AuditEvent, ConsentGrant, ConsentText, IdentityConsent, KioskSession
from consent.services import publish_consent_text, record_identity_consent


@admin.register(ConsentText)
class ConsentTextAdmin(admin.ModelAdmin):
    """A text is never reworded: adding one publishes the next version (kiosks ask again)."""

    list_display = ("purpose", "language", "version", "title", "sha256", "created_at")
    fields = ("purpose", "language", "title", "body")

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        text = publish_consent_text(
            obj.purpose, obj.language, obj.title, obj.body, actor=request.user
        )
        obj.pk, obj.version, obj.sha256 = text.pk, text.version, text.sha256


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


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records that are proof: shown, never edited in the admin."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ConsentGrant)
class ConsentGrantAdmin(ReadOnlyAdmin):
    list_display = ("session", "kiosk", "language", "given_at", "expires_at", "withdrawn_at")
    list_filter = ("language", "withdrawal_method")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("seq", "occurred_at", "actor_kind", "actor", "action", "target", "session_id")
    list_filter = ("actor_kind", "action")
    search_fields = ("actor", "action", "target", "event_id")


@admin.register(IdentityConsent)
class IdentityConsentAdmin(admin.ModelAdmin):
    """Recorded through consent.services (hash and audit event); revoked from the dashboard."""

    list_display = (
        "identity",
        "person_name",
        "document_reference",
        "valid_from",
        "valid_until",
        "revoked_at",
    )
    fields = ("identity", "person_name", "document_reference", "valid_from", "valid_until")

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        saved = record_identity_consent(
            obj.identity,
            person_name=obj.person_name,
            document_reference=obj.document_reference,
            valid_from=obj.valid_from,
            valid_until=obj.valid_until,
            actor=request.user,
        )
        obj.pk = saved.pk
