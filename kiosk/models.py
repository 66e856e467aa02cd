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
    from media_engine.engines.presenter import DEFAULT_PRESENTER, asset_name

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
