"""Staff accounts like a bank's: who needs a second factor, and the gate that holds back
every staff page until it was given.

A second factor (TOTP, django-otp) is required of every user who can *act*: anyone with a
permission other than the read-only ``view_*`` ones (operators, administrators, any future
role that can change something), staff and superusers; and of anyone who enrolled one. Such a
user, logged in with the password only, reaches nothing but the second-factor page
(:mod:`kiosk.dashboard.views.otp`) and logging out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY, devices_for_user
from django_otp.plugins.otp_totp.models import TOTPDevice

# Paths a user without the second factor may still reach (besides the second-factor pages).
OPEN_PREFIXES = ("/accounts/", "/i18n/", "/static/")
GUARDED_PREFIXES = (
    "/dashboard/",
    "/consent/",
    "/admin/",
    "/provenance/",
    "/portal/agent/",
    "/portal/supervise/",
)


def can_act(user: Any) -> bool:
    """Whether ``user`` holds any permission beyond reading (or is staff)."""
    if user.is_superuser or user.is_staff:
        return True
    return any(not p.partition(".")[2].startswith("view_") for p in user.get_all_permissions())


def has_confirmed_device(user: Any) -> bool:
    return any(True for _ in devices_for_user(user, confirmed=True))


def needs_second_factor(user: Any) -> bool:
    return bool(user.is_authenticated) and (can_act(user) or has_confirmed_device(user))


def session_verified(user: Any, session: Any) -> bool:
    """For sockets (no OTPMiddleware there): the session holds a confirmed device of the
    user's, as django-otp's login left it."""
    persistent_id = session.get(DEVICE_ID_SESSION_KEY) if session is not None else None
    if not persistent_id:
        return False
    return TOTPDevice.objects.filter(user=user, confirmed=True, pk=_pk_of(persistent_id)).exists()


def _pk_of(persistent_id: str) -> int:
    _, _, pk = str(persistent_id).rpartition("/")
    return int(pk) if pk.isdigit() else -1


class SecondFactorMiddleware:
    """After OTPMiddleware: an unverified user who needs a second factor is sent to the
    second-factor page (GET) or refused (anything else) on every staff path."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        path = request.path_info
        if (
            user is not None
            and path.startswith(GUARDED_PREFIXES)
            and not path.startswith(reverse("dashboard:otp"))
            and not user.is_verified()
            and needs_second_factor(user)
        ):
            if request.method in ("GET", "HEAD") and not path.endswith(".json"):
                return redirect(f"{reverse('dashboard:otp')}?next={request.get_full_path()}")
            return HttpResponseForbidden("A second factor is required: log in again.")
        return self.get_response(request)
