"""Kiosk pages: the list of kiosks, the kiosk screen and device enrolment (thin views).

The kiosk screen is for enrolled devices only: without a valid device credential (the
``kiosk_device_<slug>`` cookie) it shows "this device is not enrolled" (kiosk/devices.py).
"""

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache

from consent.selectors import current_texts
from kiosk import devices, selectors
from kiosk.cookies import cookie_name
from kiosk.models import Kiosk
from kiosk.signaling import MAX_SDP_BYTES


def kiosk_list(request: HttpRequest) -> HttpResponse:
    return render(request, "kiosk/list.html", {"kiosks": Kiosk.objects.all()})


def set_device_cookie(request: HttpRequest, response: HttpResponse, slug: str, token: str) -> None:
    """HttpOnly, SameSite=Strict, Secure behind TLS; sent to the page and its socket only."""
    response.set_cookie(
        cookie_name(slug),
        token,
        max_age=settings.KIOSK_DEVICE_COOKIE_MAX_AGE_S,
        httponly=True,
        secure=request.is_secure() or settings.SESSION_COOKIE_SECURE,
        samesite="Strict",
    )


def not_enrolled(request: HttpRequest, kiosk: Kiosk, refused: bool = False) -> HttpResponse:
    context = {"kiosk": kiosk, "refused": refused}
    return render(request, "kiosk/not_enrolled.html", context, status=403)


@never_cache
def kiosk_screen(request: HttpRequest, slug: str) -> HttpResponse:
    kiosk = selectors.get_kiosk(slug)
    if kiosk is None:
        raise Http404(f"no kiosk named {slug!r}")
    device = devices.authenticate(slug, request.COOKIES.get(cookie_name(slug)))
    if device is None:
        return not_enrolled(request, kiosk)
    texts = {text.language: text for text in current_texts()}
    response = render(
        request,
        "kiosk/screen.html",
        {
            "kiosk": kiosk,
            "text_zh": texts.get("zh-hans"),
            "text_en": texts.get("en"),
            "max_sdp_bytes": MAX_SDP_BYTES,
        },
    )
    if devices.rotation_due(device):
        set_device_cookie(request, response, slug, devices.rotate(device))
    return response


@never_cache
def kiosk_enrol(request: HttpRequest, slug: str, code: str) -> HttpResponse:
    """Opening a one-time enrolment link on the device stores its credential."""
    kiosk = selectors.get_kiosk(slug)
    if kiosk is None:
        raise Http404(f"no kiosk named {slug!r}")
    try:
        _, token = devices.redeem_enrolment(slug, code, request.headers.get("User-Agent", ""))
    except devices.EnrolmentRefused:
        return not_enrolled(request, kiosk, refused=True)
    response = HttpResponseRedirect(reverse("kiosk-screen", args=[slug]))
    set_device_cookie(request, response, slug, token)
    return response
