"""Helpers for the dashboard's tests: staff users in each role."""

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


def login(client, user: AbstractUser) -> None:
    """Log ``user`` in on a test client, second factor included (a confirmed TOTP device,
    as after the dashboard's enrolment and a login with a code)."""
    client.force_login(user)
