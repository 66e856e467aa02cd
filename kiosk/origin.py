"""The WebSockets' Origin check: scheme, host and port, not just the host name.

A browser page may open ``/ws/kiosk/<slug>/`` or ``/ws/dashboard/live/`` only from this
service's own origin (the scheme, host and port it was served from: the socket's own
``Host`` header and scheme, ``wss`` behind TLS, or ``https`` per ``SECURE_PROXY_SSL_HEADER``
behind a proxy) or from an origin listed in ``WEBSOCKET_ALLOWED_ORIGINS``. The host must
also be in ``ALLOWED_HOSTS``. Anything else is refused at the handshake (HTTP 403).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise(origin: str) -> str | None:
    """``scheme://host:port`` with the default port made explicit, or None if unreadable."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    return f"{parts.scheme}://{parts.hostname.lower()}:{port or DEFAULT_PORTS[parts.scheme]}"


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _secure(scope: dict) -> bool:
    if scope.get("scheme") == "wss":
        return True
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        header, value = proxy
        name = header.removeprefix("HTTP_").replace("_", "-").lower().encode()
        return _header(scope, name) == value
    return False


def own_origin(scope: dict) -> str | None:
    """The origin a page served by this request's host would have."""
    host = _header(scope, b"host")
    if not host:
        return None
    scheme = "https" if _secure(scope) else "http"
    return normalise(f"{scheme}://{host}")


def origin_allowed(scope: dict) -> bool:
    origin = _header(scope, b"origin")
    wanted = normalise(origin) if origin else None
    if wanted is None:
        return False
    host = urlsplit(wanted).hostname or ""
    if not validate_host(host, settings.ALLOWED_HOSTS):
        return False
    extra = {normalise(o) for o in settings.WEBSOCKET_ALLOWED_ORIGINS}
    return wanted == own_origin(scope) or wanted in extra


class OriginValidator:
    """ASGI middleware: refuse a WebSocket whose Origin is not this service's own."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(scope):
            denier = WebsocketDenier()
            return await denier(scope, receive, send)
        return await self.application(scope, receive, send)
