"""Helpers for the dashboard's tests: staff users in each role, logged in with their second
factor (a TOTP device, its codes computed here from the device's key)."""

import base64

from django.contrib.auth.models import AbstractUser

from kiosk.dashboard.staff import create_staff_user, ensure_roles

PASSWORD = "a-long-test-password-1"


def staff_user(role: str | None, username: str | None = None) -> AbstractUser:
    """A user in ``role`` (``None``: a logged-in user with no role at all)."""
    from django.contrib.auth import get_user_model

    ensure_roles()
    username = username or f"{role or 'nobody'}-user"
    if role is None:
        return get_user_model().objects.create_user(username=username, password=PASSWORD)
    return create_staff_user(username, PASSWORD, role)


def totp_device(user: AbstractUser):
    """The user's confirmed TOTP device (created, as after enrolment, when missing)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="test", confirmed=True)


def totp_code(key: bytes, offset_steps: int = 0) -> str:
    """The current 6-digit code for a TOTP key (30 s steps, as django-otp's defaults);
    ``offset_steps`` moves it by whole steps (e.g. the next code)."""
    from django_otp.oath import totp

    return f"{totp(key, drift=offset_steps):06d}"


def code_from_secret(secret: str) -> str:
    """The current code for a base32 secret as the enrolment page shows it."""
    padded = secret + "=" * (-len(secret) % 8)
    return totp_code(base64.b32decode(padded))


def login(client, user: AbstractUser) -> None:
    """Log ``user`` in on a test client, second factor included (a confirmed TOTP device,
    as after the dashboard's enrolment and a login with a code)."""
    from django_otp import DEVICE_ID_SESSION_KEY

    client.force_login(user)
    device = totp_device(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
