"""The audit search page and its CSV/JSON exports (streamed, keyset-read)."""

import csv
import json
from collections.abc import Iterator
from urllib.parse import urlencode

from django.db import transaction
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from consent.pii import may_read_personal_data
from kiosk.dashboard import audit_search
from kiosk.dashboard.audit_status import chain_status
from kiosk.dashboard.roles import VIEW_AUDIT
from kiosk.dashboard.staff_audit import record_staff_action
from kiosk.dashboard.views.access import render_page, staff_only


@require_GET
@never_cache  # Cache-Control: no-store (personal data, audit rows)
@staff_only(VIEW_AUDIT)
def audit_page(request: HttpRequest) -> HttpResponse:
    error = ""
    page = None
    try:
        query = audit_search.parse_query(request.GET)
        page = audit_search.search(
            query, before=request.GET.get("before", ""), after=request.GET.get("after", "")
        )
    except audit_search.BadSearch as exc:
        error = str(exc)
        query = audit_search.AuditQuery()
    if page is not None:
        reveal = may_read_personal_data(request.user)
        page.events = [audit_search.for_reader(e, reveal) for e in page.events]
    return render_page(
        request,
        "dashboard/audit.html",
        {
            "nav": "audit",
            "form": request.GET,
            "query": query,
            "page": page,
            "error": error,
            "known_actions": audit_search.KNOWN_ACTIONS,
            "chain": chain_status(),
            "export_query": urlencode(query.as_params()),
        },
        status=400 if error else 200,
    )


def _record_export(request: HttpRequest, query: audit_search.AuditQuery, fmt: str) -> None:
    with transaction.atomic():
        record_staff_action(
            request.user,
            "audit.export",
            target="audit",
            reason=f"export as {fmt}",
            details={"filters": query.as_details(), "format": fmt},
        )


def _row(event, reveal: bool) -> dict:
    """An export row as this reader may see it (``personal``: only for readers of consents)."""
    row = audit_search.export_row(audit_search.for_reader(event, reveal))
    if reveal and (personal := audit_search.personal_data(event)):
        row["personal"] = personal
    return row


def _export_name(fmt: str) -> str:
    return f"audit-{timezone.now().strftime('%Y%m%dT%H%M%SZ')}.{fmt}"


@require_GET
@never_cache  # Cache-Control: no-store (personal data, audit rows)
@staff_only(VIEW_AUDIT)
def audit_export_csv(request: HttpRequest) -> HttpResponse:
    try:
        query = audit_search.parse_query(request.GET)
    except audit_search.BadSearch as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    _record_export(request, query, "csv")

    class Echo:
        def write(self, value: str) -> str:
            return value

    writer = csv.writer(Echo())

    reveal = may_read_personal_data(request.user)
    columns = [*audit_search.EXPORT_FIELDS, *(["personal"] if reveal else [])]

    def rows() -> Iterator[str]:
        yield "\ufeff"  # so spreadsheet programs read UTF-8 (Chinese text) correctly
        yield writer.writerow(columns)
        for event in audit_search.iter_results(query):
            row = _row(event, reveal)
            row["details"] = json.dumps(row["details"], ensure_ascii=False, sort_keys=True)
            if reveal:
                row["personal"] = json.dumps(row.get("personal"), ensure_ascii=False)
            yield writer.writerow([row[name] for name in columns])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_export_name("csv")}"'
    return response


@require_GET
@never_cache  # Cache-Control: no-store (personal data, audit rows)
@staff_only(VIEW_AUDIT)
def audit_export_json(request: HttpRequest) -> HttpResponse:
    try:
        query = audit_search.parse_query(request.GET)
    except audit_search.BadSearch as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    _record_export(request, query, "json")
    reveal = may_read_personal_data(request.user)

    def chunks() -> Iterator[str]:
        head = {"exported_at": timezone.now().isoformat(), "filters": query.as_details()}
        yield json.dumps(head, ensure_ascii=False)[:-1] + ', "events": ['
        first = True
        for event in audit_search.iter_results(query):
            yield ("" if first else ",\n") + json.dumps(
                _row(event, reveal), ensure_ascii=False, sort_keys=True
            )
            first = False
        yield "]}\n"

    response = StreamingHttpResponse(chunks(), content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_export_name("json")}"'
    return response
