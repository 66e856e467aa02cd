"""Consents and identities: lists, details with the proof export, revocation."""

import uuid

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from consent.models import ConsentGrant, Identity
from consent.selectors import identity_consent_valid
from kiosk.dashboard import selectors
from kiosk.dashboard.forms import IdentityConsentForm
from kiosk.dashboard.roles import MANAGE_IDENTITIES, REVOKE_CONSENT, VIEW_CONSENTS
from kiosk.dashboard.services import record_identity, revoke_identity, revoke_visitor_consent
from kiosk.dashboard.views.access import render_page, staff_only

CONSENT_STATUSES = ("active", "withdrawn", "expired")


@require_GET
@staff_only(VIEW_CONSENTS)
def consents_page(request: HttpRequest) -> HttpResponse:
    kiosk = request.GET.get("kiosk", "").strip()[:64]
    status = request.GET.get("status", "")
    status = status if status in CONSENT_STATUSES else ""
    return render_page(
        request,
        "dashboard/consents.html",
        {
            "nav": "consents",
            "grants": selectors.consent_grants(kiosk=kiosk, status=status),
            "kiosk": kiosk,
            "status": status,
            "statuses": CONSENT_STATUSES,
            "limit": selectors.CONSENT_PAGE,
            "now": timezone.now(),
        },
    )


@require_GET
@staff_only(VIEW_CONSENTS)
def consent_detail(request: HttpRequest, grant_id: uuid.UUID) -> HttpResponse:
    grant = get_object_or_404(
        ConsentGrant.objects.select_related("kiosk", "session").prefetch_related("texts"),
        pk=grant_id,
    )
    return render_page(
        request,
        "dashboard/consent.html",
        {
            "nav": "consents",
            "grant": grant,
            "can_revoke": request.user.has_perm(REVOKE_CONSENT) and grant.withdrawn_at is None,
        },
    )


@require_POST
@staff_only(REVOKE_CONSENT)
def consent_revoke(request: HttpRequest, grant_id: uuid.UUID) -> HttpResponse:
    back = HttpResponseRedirect(reverse("dashboard:consent", args=[grant_id]))
    if request.POST.get("confirm") != "yes":
        messages.error(request, _("Please confirm the action."))
        return back
    try:
        revoke_visitor_consent(request.user, grant_id, request.POST.get("reason", ""))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return back
    messages.success(request, _("The consent was withdrawn and its session ended."))
    return back


@require_GET
@staff_only(VIEW_CONSENTS)
def identities_page(request: HttpRequest) -> HttpResponse:
    return render_page(
        request,
        "dashboard/identities.html",
        {"nav": "identities", "identities": selectors.identities_with_consent()},
    )


@require_GET
@staff_only(VIEW_CONSENTS)
def identity_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _identity_page(request, get_object_or_404(Identity, pk=pk), IdentityConsentForm())


@require_POST
@staff_only(MANAGE_IDENTITIES)
def identity_consent_record(request: HttpRequest, pk: int) -> HttpResponse:
    identity = get_object_or_404(Identity, pk=pk)
    form = IdentityConsentForm(request.POST)
    if form.is_valid():
        start, end = form.period()
        try:
            record_identity(
                request.user,
                identity.pk,
                person_name=form.cleaned_data["person_name"],
                document_reference=form.cleaned_data["document_reference"],
                valid_from=start,
                valid_until=end,
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("The person's consent was recorded."))
            return HttpResponseRedirect(reverse("dashboard:identity", args=[identity.pk]))
    return _identity_page(request, identity, form, status=400)


def _identity_page(
    request: HttpRequest, identity: Identity, form: IdentityConsentForm, status: int = 200
) -> HttpResponse:
    return render_page(
        request,
        "dashboard/identity.html",
        {
            "form": form,
            "can_record": request.user.has_perm(MANAGE_IDENTITIES),
            "nav": "identities",
            "identity": identity,
            "usable": identity_consent_valid(identity),
            "kiosks": identity.kiosks.all(),
            "consents": identity.consents.order_by("-recorded_at"),
            "can_revoke": request.user.has_perm(REVOKE_CONSENT),
        },
        status=status,
    )


@require_POST
@staff_only(REVOKE_CONSENT)
def identity_consent_revoke(request: HttpRequest, pk: int, consent_id: int) -> HttpResponse:
    identity = get_object_or_404(Identity, pk=pk)
    back = HttpResponseRedirect(reverse("dashboard:identity", args=[identity.pk]))
    if request.POST.get("confirm") != "yes":
        messages.error(request, _("Please confirm the action."))
        return back
    if not identity.consents.filter(pk=consent_id).exists():
        messages.error(request, _("No such identity consent."))
        return back
    try:
        ended = revoke_identity(request.user, consent_id, request.POST.get("reason", ""))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return back
    messages.success(
        request,
        _("The identity consent was revoked; %(n)d live session(s) ended.") % {"n": ended},
    )
    return back
