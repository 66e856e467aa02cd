"""The name of a kiosk's device-credential cookie (no Django import: clients use it too)."""

COOKIE_PREFIX = "kiosk_device_"


def cookie_name(slug: str) -> str:
    return COOKIE_PREFIX + slug
