"""Consents and identities: lists, details with the proof export, revocation."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from consent.models import Identity, KioskSession
from dashboard.roles import VIEW_CONSENTS
from dashboard.views.access import render_page, staff_only


@require_GET
@staff_only(VIEW_CONSENTS)
def consents_page(request: HttpRequest) -> HttpResponse:
    sessions = (
        KioskSession.objects.filter(consent_given=True)
        .select_related("kiosk")
        .order_by("-started_at")[:100]
    )
    return render_page(
        request, "dashboard/consents.html", {"nav": "consents", "sessions": sessions}
    )


@require_GET
@staff_only(VIEW_CONSENTS)
def identities_page(request: HttpRequest) -> HttpResponse:
    return render_page(
        request,
        "dashboard/identities.html",
        {"nav": "identities", "identities": Identity.objects.order_by("name")},
    )


@require_GET
@staff_only(VIEW_CONSENTS)
def identity_detail(request: HttpRequest, pk: int) -> HttpResponse:
    identity = get_object_or_404(Identity, pk=pk)
    return render_page(
        request,
        "dashboard/identity.html",
        {"nav": "identities", "identity": identity, "kiosks": identity.kiosks.all()},
    )
