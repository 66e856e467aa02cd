"""The operator's actions: the switch and ending a session (POST, reason + confirmation)."""

import uuid

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from kiosk.dashboard.roles import END_SESSION, OPERATE_SWITCH
from kiosk.dashboard.services import end_live_session
from kiosk.dashboard.views.access import staff_only
from kiosk.models import Kiosk
from kiosk.switch import set_fusion


def _back(request: HttpRequest) -> HttpResponseRedirect:
    target = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = reverse("dashboard:live")
    return HttpResponseRedirect(target)


def _confirmed(request: HttpRequest) -> bool:
    if request.POST.get("confirm") == "yes":
        return True
    messages.error(request, _("Please confirm the action."))
    return False


def _wanted_state(request: HttpRequest) -> bool | None:
    return {"disable": False, "enable": True}.get(request.POST.get("action", ""))


@require_POST
@staff_only(OPERATE_SWITCH)
def switch_global(request: HttpRequest) -> HttpResponse:
    return _switch(request, kiosk=None)


@require_POST
@staff_only(OPERATE_SWITCH)
def switch_kiosk(request: HttpRequest, slug: str) -> HttpResponse:
    return _switch(request, kiosk=get_object_or_404(Kiosk, slug=slug))


def _switch(request: HttpRequest, kiosk: Kiosk | None) -> HttpResponse:
    enabled = _wanted_state(request)
    if enabled is None:
        messages.error(request, _("Unknown action."))
        return _back(request)
    if not _confirmed(request):
        return _back(request)
    try:
        reason = request.POST.get("reason", "")
        set_fusion(request.user, enabled=enabled, reason=reason, kiosk=kiosk)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return _back(request)
    where = kiosk.name if kiosk else _("every kiosk")
    if enabled:
        messages.success(request, _("Face fusion is on for %(where)s.") % {"where": where})
    else:
        messages.warning(request, _("Face fusion is off for %(where)s.") % {"where": where})
    return _back(request)


@require_POST
@staff_only(END_SESSION)
def end_session(request: HttpRequest, session_id: uuid.UUID) -> HttpResponse:
    if not _confirmed(request):
        return _back(request)
    try:
        end_live_session(request.user, session_id, request.POST.get("reason", ""))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return _back(request)
    messages.success(request, _("The session was ended."))
    return _back(request)
