"""Consent texts and kiosk sessions.

A consent text is one version of what the visitor reads, per purpose and language, kept
with the sha256 of the exact text shown. A kiosk session is one visitor's visit: which
kiosk, whether consent was given, when it started and ended, and why it ended.
"""

import hashlib
import uuid

from django.db import models


class Purpose(models.TextChoices):
    FACE_PROCESSING = "face_processing", "Process my face to drive a digital human"
    PRESENTER_FACE = "presenter_face", "Show a presenter's face"


def text_sha256(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


class ConsentText(models.Model):
    purpose = models.CharField(max_length=32, choices=Purpose.choices)
    language = models.CharField(max_length=16)
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    body = models.TextField()
    sha256 = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["purpose", "language", "version"], name="consent_text_version_unique"
            )
        ]
        ordering = ["purpose", "language", "-version"]

    def __str__(self) -> str:
        return f"{self.purpose} v{self.version} [{self.language}]"

    def save(self, *args, **kwargs):
        # The hash always matches the body that is stored, and a version once stored is
        # never reworded: a change is a new version (consent.services.publish_consent_text),
        # which makes the kiosks ask again.
        self.sha256 = text_sha256(self.body)
        if self.pk is not None:
            stored = ConsentText.objects.filter(pk=self.pk).values("body", "title").first()
            if stored and (stored["body"] != self.body or stored["title"] != self.title):
                raise ValueError("a consent text version is never changed: publish a new one")
        super().save(*args, **kwargs)


class EndReason(models.TextChoices):
    BYE = "bye", "Visitor pressed Stop"
    DISCONNECT = "disconnect", "Page closed or connection lost"
    ICE_FAILED = "ice_failed", "Network path failed"
    ERROR = "error", "Error"
    BUSY = "busy", "No media worker had room"
    WITHDRAWN = "withdrawn", "Consent withdrawn"
    EXPIRED = "expired", "Consent expired"
    REVOKED = "revoked", "Identity consent revoked"
    DISABLED = "disabled", "Face fusion switched off"
    OPERATOR = "operator", "Ended by an operator"


class ProcessingMode(models.TextChoices):
    DIGITAL_HUMAN = "digital_human", "With the digital human (face processed)"
    WITHOUT_DIGITAL_HUMAN = (
        "without_digital_human",
        "Without the digital human (no face processing)",
    )


class KioskSession(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kiosk = models.ForeignKey("kiosk.Kiosk", on_delete=models.PROTECT, related_name="sessions")
    consent_given = models.BooleanField(default=False)
    consent_language = models.CharField(max_length=16, blank=True)
    engine = models.CharField(max_length=32, blank=True)
    mode = models.CharField(
        max_length=32, choices=ProcessingMode.choices, default=ProcessingMode.DIGITAL_HUMAN
    )
    identity = models.ForeignKey(
        "consent.Identity",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="sessions",
        help_text="The avatar or presenter rendered in this session.",
    )
    worker = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=32, choices=EndReason.choices, blank=True)
    end_detail = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["kiosk", "-started_at"])]

    def __str__(self) -> str:
        return f"session {self.id} at {self.kiosk_id}"


class IdentityKind(models.TextChoices):
    AVATAR = "avatar", "Avatar portrait (digital human)"
    PRESENTER = "presenter", "Presenter's face (face swap)"


class Identity(models.Model):
    """A face an engine renders: an avatar portrait or a consenting presenter's face.

    Kept as a row, not a loose file, so that it can be tied to the depicted person's own
    consent. Either ``portrait`` holds the image bytes (PNG/JPEG uploaded by an
    administrator) or ``asset`` names a shipped default in ``models/manifest.json``.
    ``synthetic`` marks a face with no real person behind it (the shipped default avatar).
    """

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=IdentityKind.choices)
    portrait = models.BinaryField(blank=True, default=b"", editable=True)
    asset = models.CharField(max_length=100, blank=True)
    synthetic = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "identities"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class ConsentMethod(models.TextChoices):
    SCREEN_BUTTON = "screen_button", "Button on the kiosk screen"


class WithdrawalMethod(models.TextChoices):
    WITHDRAW_BUTTON = "withdraw_button", "Withdraw button on the kiosk screen"
    STOP_BUTTON = "stop_button", "Stop button on the kiosk screen"
    SESSION_CLOSED = "session_closed", "Session closed (page left or connection lost)"
    OPERATOR = "operator", "An operator ended the session"


class ConsentGrant(models.Model):
    """A visitor's consent for one session: what they read (version and sha256 of each
    text), when, how, until when, and when they withdrew it. Never edited except to record
    the withdrawal; ``record_hash`` is the sha256 of the grant as given."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.OneToOneField(KioskSession, on_delete=models.PROTECT, related_name="grant")
    kiosk = models.ForeignKey("kiosk.Kiosk", on_delete=models.PROTECT, related_name="grants")
    purposes = models.JSONField(default=list)
    texts = models.ManyToManyField(ConsentText, related_name="grants")
    text_versions = models.JSONField(
        default=list, help_text="[{purpose, language, version, sha256}] of the texts shown"
    )
    language = models.CharField(max_length=16)
    method = models.CharField(max_length=32, choices=ConsentMethod.choices)
    given_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawal_method = models.CharField(
        max_length=32, choices=WithdrawalMethod.choices, blank=True
    )
    record_hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-given_at"]
        indexes = [models.Index(fields=["expires_at"]), models.Index(fields=["given_at"])]

    def __str__(self) -> str:
        return f"consent for session {self.session_id}"


class IdentityConsent(models.Model):
    """The depicted person's own consent to an identity (avatar built from them, or their
    face as a presenter): who, the reference of the signed document, validity, revocation."""

    identity = models.ForeignKey(Identity, on_delete=models.PROTECT, related_name="consents")
    person_name = models.CharField(max_length=200)
    document_reference = models.CharField(
        max_length=200, help_text="Reference of the signed consent document (not the document)."
    )
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField()
    recorded_by = models.CharField(max_length=200)
    recorded_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.CharField(max_length=200, blank=True)
    revocation_reason = models.CharField(max_length=500, blank=True)
    record_hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-recorded_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(valid_until__gt=models.F("valid_from")),
                name="identity_consent_valid_period",
            )
        ]

    def __str__(self) -> str:
        return f"{self.person_name} for {self.identity_id} ({self.document_reference})"


# The audit trail's tables live in their own module; importing them here registers them.
from consent.audit_models import (  # noqa: E402
    ActorKind,
    AuditAnchor,
    AuditChainHead,
    AuditCheckpoint,
    AuditEvent,
    AuditOutbox,
)

__all__ = [
    "ActorKind",
    "AuditAnchor",
    "AuditChainHead",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditOutbox",
    "ConsentGrant",
    "ConsentMethod",
    "ConsentText",
    "EndReason",
    "Identity",
    "IdentityConsent",
    "IdentityKind",
    "KioskSession",
    "ProcessingMode",
    "Purpose",
    "WithdrawalMethod",
]
