"""The live sessions page and its JSON (the numbers arrive over the socket)."""

import uuid

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from kiosk.dashboard import selectors
from kiosk.dashboard.roles import END_SESSION, OPERATE_SWITCH, VIEW_DASHBOARD
from kiosk.dashboard.views.access import render_page, staff_only
from kiosk.portal.selectors import live_calls as portal_live_calls
from kiosk.selectors import global_switch, kiosks_with_switch


@require_GET
@staff_only(VIEW_DASHBOARD)
def live_page(request: HttpRequest) -> HttpResponse:
    sessions = selectors.live_session_rows()
    can_end = request.user.has_perm(END_SESSION)
    config = {
        "ws_path": "/ws/dashboard/live/",
        "json_url": reverse("dashboard:live-json"),
        "window_s": 300,
        "sessions": sessions,
        "end_url_template": reverse("dashboard:end-session", args=[uuid.UUID(int=0)])
        if can_end
        else "",
        "strings": {
            "live": _("live"),
            "reconnecting": _("reconnecting…"),
            "end": _("End"),
            "end_title": _("End this session"),
            "calls": {
                "none": _("No portal calls."),
                "blurred": _("blurred"),
                "watch": _("Watch"),
                # Django's own words, as the template's |yesno shows them.
                "yes": _("yes,no,maybe").split(",")[0],
                "no": _("yes,no,maybe").split(",")[1],
            },
            "states": {
                "connecting": _("connecting"),
                "live": _("live"),
                "paused": _("paused"),
                "stopped": _("stopped"),
                "failed": _("failed"),
            },
        },
    }
    return render_page(
        request,
        "dashboard/live.html",
        {
            "nav": "live",
            "sessions": sessions,
            "kiosks": kiosks_with_switch(),
            "can_end": can_end,
            "can_switch": request.user.has_perm(OPERATE_SWITCH),
            "live_config": config,
            "portal_calls": portal_live_calls(),
        },
    )


@require_GET
@staff_only(VIEW_DASHBOARD)
def live_json(request: HttpRequest) -> JsonResponse:
    switch = global_switch()
    return JsonResponse(
        {
            "sessions": selectors.live_session_rows(),
            "switch": {
                "enabled": switch.enabled,
                "reason": switch.reason,
                "changed_by": switch.changed_by,
                "changed_at": switch.changed_at.isoformat() if switch.changed_at else None,
            },
            "kiosks": [
                {"slug": k.slug, "fusion_enabled": k.fusion_enabled, "reason": k.fusion_reason}
                for k in kiosks_with_switch()
            ],
        }
    )


@require_GET
@staff_only(VIEW_DASHBOARD)
def kiosks_page(request: HttpRequest) -> HttpResponse:
    return render_page(
        request,
        "dashboard/kiosks.html",
        {
            "nav": "kiosks",
            "kiosks": kiosks_with_switch(),
            "packs": selectors.engine_packs(),
            "can_switch": request.user.has_perm(OPERATE_SWITCH),
        },
    )
