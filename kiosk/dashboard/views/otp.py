"""The second factor: enrol a TOTP device (the secret shown once, as a QR code and as text)
or give a code from it; either way the session is then verified (django-otp's login)."""

from __future__ import annotations

import base64

import segno
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from kiosk.dashboard.staff_audit import record_staff_action

DEVICE_NAME = "authenticator app"


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return "/dashboard/"


def _pending_device(user) -> TOTPDevice:
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)


def _enrolment(device: TOTPDevice) -> dict[str, str]:
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    return {
        "secret": secret,
        "uri": device.config_url,
        "qr_svg": segno.make(device.config_url, error="m").svg_inline(scale=4),
    }


@never_cache
@login_required
def second_factor(request: HttpRequest) -> HttpResponse:
    user = request.user
    if user.is_verified():
        return redirect(_next_url(request))
    confirmed = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    device = confirmed or _pending_device(user)
    error = ""
    if request.method == "POST":
        token = "".join(request.POST.get("token", "").split())[:12]
        if token.isdigit() and device.verify_token(token):
            with transaction.atomic():
                if not device.confirmed:
                    device.confirmed = True
                    device.save(update_fields=["confirmed"])
                    record_staff_action(
                        user,
                        "staff.second_factor_enrolled",
                        target=f"user:{user.pk}",
                        reason="TOTP device enrolled from the dashboard",
                    )
            otp_login(request, device)
            return redirect(_next_url(request))
        error = _("That code is not valid. Try the current one.")
    context = {"enrolling": not device.confirmed, "error": error, "next": _next_url(request)}
    if not device.confirmed:
        context.update(_enrolment(device))
    return render(request, "dashboard/otp.html", context, status=400 if error else 200)
