"""Enrolled kiosk devices, for administrators: new enrolment links and revocation."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from kiosk import devices
from kiosk.dashboard.staff_audit import clean_reason
from kiosk.dashboard.views.access import render_page, staff_only
from kiosk.models import Kiosk, KioskDevice

MANAGE_KIOSKS = "kiosk.change_kiosk"  # administrators (kiosk/dashboard/roles.py)


@never_cache
@require_http_methods(["GET", "POST"])
@staff_only(MANAGE_KIOSKS)
def kiosk_devices(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: the kiosk's devices. POST: a new one-time enrolment link, shown once."""
    kiosk = get_object_or_404(Kiosk, slug=slug)
    link = ""
    if request.method == "POST":
        enrolment = devices.issue_enrolment(kiosk, request.user)
        link = request.build_absolute_uri(enrolment.path())
    context = {
        "nav": "kiosks",
        "kiosk": kiosk,
        "devices": list(kiosk.devices.all()[:50]),
        "enrolment_link": link,
    }
    return render_page(request, "dashboard/devices.html", context)


@require_POST
@staff_only(MANAGE_KIOSKS)
def revoke_device(request: HttpRequest, slug: str, device_id: int) -> HttpResponse:
    device = get_object_or_404(KioskDevice, pk=device_id, kiosk__slug=slug)
    try:
        reason = clean_reason(request.POST.get("reason"))
    except Exception as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
    else:
        devices.revoke(device, request.user, reason)
        messages.success(request, _("The device is revoked; its live call has ended."))
    return HttpResponseRedirect(reverse("dashboard:kiosk-devices", args=[slug]))
