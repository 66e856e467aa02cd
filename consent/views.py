"""Proof exports and the record of processing (thin views over consent.proofs).

Readable by staff with the dashboard's ``view_consents`` permission; each export is itself
an audit event.
"""

import json

from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from consent import proofs
from consent.audit import record_event
from consent.models import KioskSession
from consent.pii import pii_hash

VIEW_CONSENTS = "dashboard.view_consents"


def _respond(request: HttpRequest, data: dict, title: str, as_json: bool) -> HttpResponse:
    if as_json:
        return JsonResponse(data, json_dumps_params={"ensure_ascii": False, "indent": 2})
    return render(
        request,
        "consent/proof.html",
        {"proof": data, "title": title, "raw": json.dumps(data, ensure_ascii=False, indent=2)},
    )


@require_GET
@never_cache  # Cache-Control: no-store (personal data, audit rows)
@permission_required(VIEW_CONSENTS, raise_exception=True)
def session_proof(request: HttpRequest, session_id, as_json: bool = False) -> HttpResponse:
    try:
        data = proofs.session_proof(session_id)
    except KioskSession.DoesNotExist:
        raise Http404("no such session") from None
    record_event(
        request.user,
        "proof.exported",
        f"session:{session_id}",
        session=session_id,
        details={"format": "json" if as_json else "html"},
    )
    return _respond(request, data, f"Consent proof: session {session_id}", as_json)


@require_GET
@never_cache  # Cache-Control: no-store (personal data, audit rows)
@permission_required(VIEW_CONSENTS, raise_exception=True)
def person_proof(request: HttpRequest, as_json: bool = False) -> HttpResponse:
    reference = request.GET.get("ref", "")[:200]
    try:
        data = proofs.person_proof(reference)
    except ValueError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    record_event(
        request.user,
        "proof.exported",
        f"person:{pii_hash(reference)}",  # the reference itself never enters the audit
        details={"format": "json" if as_json else "html"},
    )
    return _respond(request, data, f"Consent proof: {reference}", as_json)


@require_GET
@never_cache  # Cache-Control: no-store (personal data, audit rows)
@permission_required(VIEW_CONSENTS, raise_exception=True)
def record_of_processing(request: HttpRequest, as_json: bool = False) -> HttpResponse:
    data = proofs.record_of_processing()
    record_event(
        request.user,
        "record_of_processing.exported",
        "consent",
        details={"format": "json" if as_json else "html"},
    )
    return _respond(request, data, "Record of processing", as_json)
