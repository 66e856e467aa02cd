"""Reads about kiosks and the fusion switch (plain functions, no side effects)."""

from consent.selectors import current_texts
from kiosk.models import FusionSwitch, Kiosk


def get_kiosk(slug: str) -> Kiosk | None:
    return Kiosk.objects.filter(slug=slug).first()


def fusion_allowed(kiosk_slug: str | None = None) -> bool:
    """True when fused video may be produced (globally, and for this kiosk if named).

    Database errors propagate: callers treat an unreadable switch as "off" (fail closed).
    A missing global row means the switch was never touched: fusion is on.
    """
    switch = FusionSwitch.objects.filter(pk=1).first()
    if switch is not None and not switch.enabled:
        return False
    if kiosk_slug is not None:
        kiosk = Kiosk.objects.filter(slug=kiosk_slug).only("fusion_enabled").first()
        if kiosk is None or not kiosk.fusion_enabled:
            return False
    return True


def kiosk_greeting(kiosk: Kiosk) -> dict:
    """What a kiosk page is told when it connects: who it is and which consent texts apply."""
    return {
        "kiosk": {
            "slug": kiosk.slug,
            "name": kiosk.name,
            "location": kiosk.location,
            "engine": kiosk.engine,
        },
        "consent_texts": [
            {
                "purpose": text.purpose,
                "language": text.language,
                "version": text.version,
                "sha256": text.sha256,
                "title": text.title,
            }
            for text in current_texts()
        ],
    }


def global_switch() -> FusionSwitch:
    """The global switch row as it stands (an unsaved "on" row when never touched)."""
    return FusionSwitch.objects.filter(pk=1).first() or FusionSwitch(pk=1, enabled=True)


def kiosks_with_switch() -> list[Kiosk]:
    return list(Kiosk.objects.select_related("identity").order_by("name"))
