"""Writes about kiosks (plain functions; views and consumers stay thin)."""

from kiosk.models import Engine, Kiosk

DEMO_KIOSK_SLUG = "demo"


def ensure_demo_kiosk() -> Kiosk:
    """The kiosk a fresh installation shows, so the service is usable at once."""
    kiosk, _ = Kiosk.objects.get_or_create(
        slug=DEMO_KIOSK_SLUG,
        defaults={"name": "Demo kiosk", "location": "Counter 1", "engine": Engine.AVATAR},
    )
    return kiosk
