"""A strict Content-Security-Policy on every answer (Django 5.2 has none built in).

Scripts and styles come only from this origin's files: no inline script, no inline style,
no ``eval``; the page connects only back to its own origin (HTTP and its WebSockets);
nothing may frame it. Every template keeps its scripts in static files
(``kiosk/static``, ``kiosk/dashboard/static``, ``consent/static``).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

DIRECTIVES = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "media-src 'self' blob:",
    "worker-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)


def policy(request: HttpRequest) -> str:
    """The policy for this request; ``connect-src`` names the page's own WebSocket origin
    (``'self'`` does not cover ws:/wss: in every browser)."""
    scheme = "wss" if request.is_secure() else "ws"
    connect = f"connect-src 'self' {scheme}://{request.get_host()}"
    return "; ".join((*DIRECTIVES, connect))


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy(request)
        return response
