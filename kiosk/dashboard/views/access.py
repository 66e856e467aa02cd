"""Who may open what: every dashboard view is for logged-in staff with a permission."""

from collections.abc import Callable

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from kiosk.selectors import global_switch

View = Callable[..., HttpResponse]


def staff_only(permission: str) -> Callable[[View], View]:
    """Anonymous users go to the login page; staff without ``permission`` get 403."""

    def wrap(view: View) -> View:
        return login_required(permission_required(permission, raise_exception=True)(view))

    return wrap


def render_page(
    request: HttpRequest, template: str, context: dict | None = None, status: int = 200
) -> HttpResponse:
    """Every dashboard page shows the global switch's state in its header."""
    page = {"global_switch": global_switch(), **(context or {})}
    return render(request, template, page, status=status)
