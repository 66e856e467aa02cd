"""Login throttling (django-axes): who the client is behind the proxy, and the audit of a
lockout. Axes locks a username at one address out after ``AXES_FAILURE_LIMIT`` failures
for ``AXES_COOLOFF_TIME``; each lockout is an audit event."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """The client's address: behind the proxy (production), the last hop nginx appended to
    X-Forwarded-For (what the client itself sent before it is not trusted); else the
    socket's peer."""
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if hops:
            return hops[-1][:64]
    return request.META.get("REMOTE_ADDR", "")[:64]


def _record_lockout(request: Any, username: str | None, ip_address: str | None) -> None:
    from consent.audit import record_event

    with transaction.atomic():
        record_event(
            "system:login",
            "staff.locked_out",
            f"user:{(username or '?')[:150]}",
            details={
                "address": (ip_address or "")[:64],
                "failures": settings.AXES_FAILURE_LIMIT,
                "reason": "too many failed logins",
            },
        )


def _on_locked_out(
    sender: Any,
    request: Any = None,
    username: str | None = None,
    ip_address: str | None = None,
    **kwargs: Any,
) -> None:
    _record_lockout(request, username, ip_address)


def connect_signals() -> None:
    from axes.signals import user_locked_out

    user_locked_out.connect(_on_locked_out, dispatch_uid="kiosk-audit-lockout")
