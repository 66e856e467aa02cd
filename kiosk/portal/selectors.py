"""Reads about the portal: the queue, positions, live calls (plain functions)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from consent.models import ConsentText
from consent.selectors import current_text
from kiosk.portal.models import AgentProfile, CallStatus, PortalCall, Service
from kiosk.portal.texts import AGENT_CALL


def stale_before() -> dt.datetime:
    """Waiting calls not seen since then have lost their customer (socket gone for good)."""
    return timezone.now() - dt.timedelta(seconds=settings.PORTAL_QUEUE_STALE_S)


def waiting(service: str | None = None):
    calls = PortalCall.objects.filter(status=CallStatus.WAITING, last_seen_at__gte=stale_before())
    if service is not None:
        calls = calls.filter(service=service)
    return calls.order_by("joined_at")


def queue_position(call: PortalCall) -> int:
    """1 for the longest-waiting customer of the call's service."""
    return waiting(call.service).filter(joined_at__lt=call.joined_at).count() + 1


def queue_snapshot() -> dict[str, list[dict[str, Any]]]:
    """What an agent sees: each service's waiting customers, longest-waiting first."""
    now = timezone.now()
    snapshot: dict[str, list[dict[str, Any]]] = {s: [] for s in Service.values}
    for call in waiting().select_related("session__kiosk")[:200]:
        snapshot[call.service].append(
            {
                "call_id": str(call.id),
                "waited_s": round((now - call.joined_at).total_seconds()),
                "language": call.session.consent_language,
                "from_home": call.from_home,
                "kiosk": call.session.kiosk.name,
                "blur": call.blur_customer,
            }
        )
    return snapshot


def call_text(language: str) -> ConsentText | None:
    return current_text(AGENT_CALL, language)


def agent_profile(user: Any) -> AgentProfile | None:
    return AgentProfile.objects.filter(user=user).select_related("identity").first()


def get_call(call_id: Any) -> PortalCall | None:
    try:
        return PortalCall.objects.select_related("session__kiosk", "agent").get(pk=call_id)
    except (PortalCall.DoesNotExist, ValidationError, ValueError, TypeError):
        return None


def live_calls() -> list[PortalCall]:
    """Calls that are not over (for the dashboard's live page), newest first."""
    return list(
        PortalCall.objects.exclude(status=CallStatus.ENDED)
        .select_related("session__kiosk", "agent")
        .order_by("-joined_at")[:100]
    )


def live_call_rows(can_watch: bool) -> list[dict[str, Any]]:
    """The dashboard's calls table as data (the live socket sends it on every change): the
    same columns as ``portal/dashboard_calls.html``; ``watch_url`` only for a supervisor
    (``can_watch``) and only while the agent allows it."""
    return [
        {
            "call_id": str(call.pk),
            "session_id": str(call.session_id),
            "service": call.get_service_display(),
            "status": call.get_status_display(),
            "kiosk": call.session.kiosk.name,
            "from_home": call.from_home,
            "blurred": call.blur_customer,
            "agent": call.agent.get_username() if call.agent else "",
            "worker": call.worker,
            "joined_at": timezone.localtime(call.joined_at).strftime("%Y-%m-%d %H:%M:%S"),
            "supervisor_allowed": call.supervisor_allowed,
            "watch_url": reverse("portal:supervise", args=[call.pk])
            if can_watch and call.supervisor_allowed
            else "",
        }
        for call in live_calls()
    ]
