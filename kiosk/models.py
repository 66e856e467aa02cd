"""Kiosks and the fusion switch.

A kiosk is one counter screen with a camera. Its configuration says which fusion engine
its sessions use. The fusion switch is the one-click disable: the global row and each
kiosk's own flag are the truth that every media worker follows (fail closed).
"""

from django.db import models


class Engine(models.TextChoices):
    LABEL = "label", "Label only (camera passed through, labelled)"
    AVATAR = "avatar", "Avatar (digital human)"
    SWAP = "swap", "Presenter face swap"
    INSIGHTFACE = "insightface", "Operator model pack (insightface)"
    BLUR = "blur", "Face blur"


def default_identity() -> int | None:
    """New kiosks show the first shipped presenter (None before its row exists)."""
    from consent.models import Identity
    from media_engine.engines.presenter_catalog import DEFAULT_PRESENTER, asset_name

    rows = Identity.objects.filter(asset=asset_name(DEFAULT_PRESENTER), synthetic=True)
    return rows.values_list("pk", flat=True).first()


class Kiosk(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    location = models.CharField(max_length=200, blank=True)
    engine = models.CharField(max_length=32, choices=Engine.choices, default=Engine.AVATAR)
    identity = models.ForeignKey(
        "consent.Identity",
        null=True,
        blank=True,
        default=default_identity,
        on_delete=models.PROTECT,
        related_name="kiosks",
        help_text="The avatar or presenter this kiosk's engine renders.",
    )
    fusion_enabled = models.BooleanField(
        default=True, help_text="Per-kiosk switch; the global switch overrides it."
    )
    fusion_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"


class FusionSwitch(models.Model):
    """The global switch: a single row (pk=1). Disabled means no fused video anywhere."""

    enabled = models.BooleanField(default=True)
    reason = models.CharField(max_length=500, blank=True)
    changed_by = models.CharField(max_length=150, blank=True)
    changed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return "face fusion on" if self.enabled else "face fusion off"


class KioskEnrolment(models.Model):
    """A one-time enrolment code an administrator issued for a kiosk (docs/signaling.md).

    Only the SHA-256 of the code is kept. Opening the link once on the kiosk's device turns
    it into a :class:`KioskDevice` credential; it expires after ``KIOSK_ENROLMENT_TTL_S``.
    """

    kiosk = models.ForeignKey(Kiosk, on_delete=models.CASCADE, related_name="enrolments")
    code_sha256 = models.CharField(max_length=64, unique=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"enrolment for {self.kiosk_id} (expires {self.expires_at:%Y-%m-%d %H:%M})"


class KioskDevice(models.Model):
    """An enrolled device's long-lived credential, bound to one kiosk.

    The device keeps the token in an HttpOnly cookie; the server keeps only its SHA-256.
    Rotation replaces the hash (the device gets the new token in the same response);
    revocation ends the device's live calls and refuses its signaling from then on.
    """

    kiosk = models.ForeignKey(Kiosk, on_delete=models.CASCADE, related_name="devices")
    token_sha256 = models.CharField(max_length=64, unique=True)
    label = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        state = "revoked" if self.revoked_at else "active"
        return f"device {self.pk} of {self.kiosk_id} ({state})"


class KioskCall(models.Model):
    """The one live call a kiosk may have at a time (shared by every daphne process).

    A row per kiosk; ``session_id`` empty means free. A claim whose ``heartbeat_at`` is
    older than ``KIOSK_CALL_STALE_S`` is taken over (its daphne died without releasing it).
    """

    kiosk = models.OneToOneField(Kiosk, on_delete=models.CASCADE, related_name="call")
    session_id = models.CharField(max_length=64, blank=True)
    device = models.ForeignKey(KioskDevice, null=True, blank=True, on_delete=models.SET_NULL)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"call of {self.kiosk_id}: {self.session_id or 'free'}"
