"""The portal's pages (thin): the customer's screen, the agent's desk, the supervisor's view."""

from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from kiosk import devices, limits
from kiosk import selectors as kiosk_selectors
from kiosk.cookies import cookie_name
from kiosk.portal import selectors, services
from kiosk.portal.models import Service
from kiosk.views import not_enrolled


def _customer_page(request: HttpRequest, socket_path: str, title: str) -> HttpResponse:
    texts = {language: selectors.call_text(language) for language in ("zh-hans", "en")}
    return render(
        request,
        "portal/customer.html",
        {
            "socket_path": socket_path,
            "title": title,
            "text_zh": texts["zh-hans"],
            "text_en": texts["en"],
            "services": Service.choices,
        },
    )


@never_cache
def kiosk_customer(request: HttpRequest, slug: str) -> HttpResponse:
    """For the kiosk's enrolled device only, as the kiosk screen (kiosk/views.py)."""
    kiosk = kiosk_selectors.get_kiosk(slug)
    if kiosk is None:
        raise Http404(f"no kiosk named {slug!r}")
    if devices.authenticate(slug, request.COOKIES.get(cookie_name(slug))) is None:
        return not_enrolled(request, kiosk)
    return _customer_page(request, f"/ws/kiosk/{kiosk.slug}/portal/", kiosk.name)


@never_cache
def home_customer(request: HttpRequest, token: str) -> HttpResponse:
    """The link is the customer's credential; guessing links is rate-limited."""
    address = request.META.get("REMOTE_ADDR") or "unknown"
    if not limits.allow("connect", "link:" + token[:64], address):
        return HttpResponse("Too many attempts; please wait a minute.", status=429)
    if not services.home_link_usable(token):
        return render(request, "portal/link_invalid.html", status=404)
    return _customer_page(request, f"/ws/portal/link/{token}/", "")


@login_required
@permission_required("portal.take_calls", raise_exception=True)
def agent_desk(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "portal/agent.html",
        {"profile": selectors.agent_profile(request.user), "services": Service.choices},
    )


@login_required
@permission_required("portal.supervise_calls", raise_exception=True)
def supervise(request: HttpRequest, call_id: str) -> HttpResponse:
    call = selectors.get_call(call_id)
    if call is None:
        raise Http404("no such call")
    return render(request, "portal/supervise.html", {"call": call})
