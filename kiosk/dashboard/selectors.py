"""What the dashboard reads (plain functions, no side effects)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from consent.models import KioskSession

# A session whose row never got an end (a worker killed hard) stops counting as live.
LIVE_SESSION_MAX_AGE = timedelta(hours=12)


def live_sessions() -> list[KioskSession]:
    since = timezone.now() - LIVE_SESSION_MAX_AGE
    return list(
        KioskSession.objects.filter(ended_at__isnull=True, started_at__gte=since)
        .select_related("kiosk", "kiosk__identity", "identity", "grant")
        .order_by("-started_at")[:500]
    )


def live_session_rows() -> list[dict[str, Any]]:
    """The live sessions as the live page's JSON rows (stats arrive over the socket)."""
    rows = []
    for s in live_sessions():
        identity = s.identity or s.kiosk.identity
        rows.append(
            {
                "session_id": str(s.pk),
                "kiosk": s.kiosk.slug,
                "kiosk_name": s.kiosk.name,
                "worker": s.worker,
                "engine": s.engine or s.kiosk.engine,
                "identity": identity.name if identity else "",
                "consent_reference": consent_reference(s),
                "started_at": s.started_at.isoformat(),
            }
        )
    return rows


def consent_reference(session: KioskSession) -> str:
    """The reference of the consent the visitor gave for this session (the grant's id;
    a session without the digital human has none)."""
    grant = getattr(session, "grant", None)
    return str(grant.pk) if grant is not None else ""


def engine_packs() -> list[dict[str, Any]]:
    """The operator-installed insightface model packs with their licence (or why a pack
    cannot be used). Never shipped or downloaded: an operator installs them."""
    from media_engine.engines import insightface_swap

    return insightface_swap.installed_packs(insightface_swap.PACKS_DIR)


CONSENT_PAGE = 100


def consent_grants(*, kiosk: str = "", status: str = "", limit: int = CONSENT_PAGE) -> list:
    """The newest visitor consents (``status``: "active", "withdrawn" or "expired")."""
    from consent.models import ConsentGrant

    grants = ConsentGrant.objects.select_related("kiosk", "session").order_by("-given_at")
    if kiosk:
        grants = grants.filter(kiosk__slug=kiosk)
    now = timezone.now()
    if status == "active":
        grants = grants.filter(withdrawn_at__isnull=True, expires_at__gt=now)
    elif status == "withdrawn":
        grants = grants.filter(withdrawn_at__isnull=False)
    elif status == "expired":
        grants = grants.filter(withdrawn_at__isnull=True, expires_at__lte=now)
    return list(grants[:limit])


def identities_with_consent() -> list[dict[str, Any]]:
    """Every identity with whether it may be rendered now and its kiosks."""
    from consent.models import Identity
    from consent.selectors import identity_consent_valid

    out = []
    for identity in Identity.objects.prefetch_related("kiosks").order_by("name"):
        out.append(
            {
                "identity": identity,
                "usable": identity_consent_valid(identity),
                "kiosks": list(identity.kiosks.all()),
            }
        )
    return out
