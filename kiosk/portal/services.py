"""Writes about portal calls (plain functions; the consumers call these).

Every write leaves its audit event (``consent.audit.record_event``) in the same transaction;
the parties are told over the channel layer once it commits (``kiosk.portal.notify``).

    customer consents + joins ─▶ waiting ─▶ agent accepts ─▶ accepted ─▶ media ─▶ ended
                                   └──────── bye / withdraw / disconnect / switch ───┘
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from consent import audit
from consent.models import (
    ConsentGrant,
    ConsentMethod,
    EndReason,
    IdentityConsent,
    KioskSession,
    ProcessingMode,
    WithdrawalMethod,
)
from consent.selectors import identity_consent_valid, valid_identity_consents
from consent.services import (
    end_kiosk_session,
    end_live_sessions,
    grant_record,
    record_grant_given,
    record_hash,
    withdraw_consent,
)
from kiosk.models import Kiosk
from kiosk.portal import notify, selectors
from kiosk.portal.models import CallStatus, HomeLink, PortalCall, Service
from kiosk.portal.texts import HOME_KIOSK

CALL_ENGINES = ("avatar", "swap", "insightface")


class PortalError(ValueError):
    """A request the portal refuses; ``code`` is one of ``kiosk.portal.protocol`` codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- the customer ----------------------------------------------------------------------------


def _call_grant(session: KioskSession, kiosk: Kiosk, text: Any, language: str) -> ConsentGrant:
    now = timezone.now()
    grant = ConsentGrant(
        session=session,
        kiosk=kiosk,
        purposes=[text.purpose],
        text_versions=[
            {
                "purpose": text.purpose,
                "language": text.language,
                "version": text.version,
                "sha256": text.sha256,
            }
        ],
        language=language,
        method=ConsentMethod.SCREEN_BUTTON,
        given_at=now,
        expires_at=now + dt.timedelta(seconds=settings.CONSENT_GRANT_TTL_S),
    )
    grant.record_hash = record_hash(grant_record(grant))
    grant.save()
    grant.texts.set([text])
    return grant


def join_queue(
    kiosk: Kiosk,
    *,
    service: str,
    language: str,
    text_sha256: str,
    blur: bool,
    customer_channel: str,
    from_home: bool = False,
) -> PortalCall:
    """The customer agreed to the call's consent text and waits for an agent of ``service``."""
    if service not in Service.values:
        raise PortalError("unknown_service", f"service must be one of {', '.join(Service.values)}")
    text = selectors.call_text(language)
    if text is None:
        raise PortalError("consent_outdated", f"no call consent text in {language!r}")
    if text_sha256 and text_sha256 != text.sha256:
        raise PortalError("consent_outdated", "the consent text changed: show it and ask again")
    with transaction.atomic():
        session = KioskSession.objects.create(
            kiosk=kiosk,
            consent_given=True,
            consent_language=language,
            engine="portal",
            mode=ProcessingMode.DIGITAL_HUMAN,
        )
        grant = _call_grant(session, kiosk, text, language)
        call = PortalCall.objects.create(
            service=service,
            session=session,
            blur_customer=blur,
            from_home=from_home,
            customer_channel=customer_channel[:200],
        )
        record_grant_given(kiosk, session, grant, blur_customer=blur)
        audit.record_event(
            audit.Actor.kiosk(kiosk),
            "portal.queue_joined",
            f"portal.call:{call.pk}",
            session=session,
            details={"service": service, "from_home": from_home, "blur_customer": blur},
        )
        notify.queue_changed_after_commit(service)
        notify.calls_changed_after_commit()
    return call


def touch(call_id: Any, channel: str = "") -> None:
    """The customer's socket is alive (after a daphne restart: under a new channel name)."""
    fields: dict[str, Any] = {"last_seen_at": timezone.now()}
    if channel:
        fields["customer_channel"] = channel[:200]
    PortalCall.objects.filter(pk=call_id).exclude(status=CallStatus.ENDED).update(**fields)


# --- the agent -------------------------------------------------------------------------------


def agent_identity_consent(identity: Any) -> IdentityConsent | None:
    """The identity consent an agent's presenter identity is used under (None: synthetic)."""
    return valid_identity_consents().filter(identity=identity).order_by("-recorded_at").first()


def check_agent(user: Any) -> Any:
    """The agent's profile, if they may take a call now (their identity consent holds)."""
    if not user.has_perm("portal.take_calls"):
        raise PortalError("not_agent", "this account does not have the agent role")
    profile = selectors.agent_profile(user)
    if profile is None or profile.identity is None:
        raise PortalError("agent_not_consented", "no digital-human identity is set for this agent")
    if profile.engine not in CALL_ENGINES:
        raise PortalError("agent_not_consented", f"engine {profile.engine!r} shows the camera")
    if not identity_consent_valid(profile.identity):
        raise PortalError(
            "agent_not_consented",
            "the identity consent for this agent's presenter identity is not valid now",
        )
    return profile


def accept_call(
    user: Any, *, agent_channel: str, call_id: Any = None, service: str | None = None
) -> PortalCall:
    """The agent takes ``call_id``, or the longest-waiting call of ``service`` (any service
    when ``None``). The agent's identity consent is checked first, every time."""
    profile = check_agent(user)
    expire_stale_calls()
    with transaction.atomic():
        calls = selectors.waiting(service).select_for_update(skip_locked=True)
        call = calls.filter(pk=call_id).first() if call_id is not None else calls.first()
        if call is None:
            raise PortalError("queue_empty", "no customer is waiting for this (any more)")
        consent = agent_identity_consent(profile.identity)
        call.status = CallStatus.ACCEPTED
        call.agent = user
        call.agent_channel = agent_channel[:200]
        call.engine = profile.engine
        call.identity = profile.identity
        call.accepted_at = timezone.now()
        call.save()
        audit.record_event(
            user,
            "portal.call_accepted",
            f"portal.call:{call.pk}",
            session=call.session_id,
            details={
                "service": call.service,
                "engine": profile.engine,
                "identity": profile.identity_id,
                "identity_consent": consent.pk if consent else None,
                "identity_consent_hash": consent.record_hash if consent else None,
                "waited_s": round((call.accepted_at - call.joined_at).total_seconds()),
            },
        )
        notify.send_after_commit(
            call.customer_channel,
            {"type": "portal.accepted", "call_id": str(call.pk), "agent": profile.display_name},
        )
        notify.queue_changed_after_commit(call.service)
        notify.calls_changed_after_commit()
    return PortalCall.objects.select_related("session__kiosk").get(pk=call.pk)


def expire_stale_calls() -> int:
    """End the waiting calls whose customer never came back (``PORTAL_QUEUE_STALE_S``)."""
    stale = PortalCall.objects.filter(
        status=CallStatus.WAITING, last_seen_at__lt=selectors.stale_before()
    ).values_list("pk", flat=True)[:100]
    for call_id in list(stale):
        end_call(call_id, EndReason.DISCONNECT, "the customer left the queue")
    return len(stale)


def record_media(call_id: Any, *, worker: str, control_channel: str) -> PortalCall | None:
    """The media worker answered the customer: the call's media runs there."""
    with transaction.atomic():
        call = PortalCall.objects.select_for_update().filter(pk=call_id).first()
        if call is None or call.status == CallStatus.ENDED:
            return call
        call.worker, call.control_channel = worker[:200], control_channel[:200]
        call.save(update_fields=["worker", "control_channel"])
        KioskSession.objects.filter(pk=call.session_id).update(worker=worker[:200])
        audit.record_event(
            audit.Actor.system("portal"),
            "portal.call_started",
            f"portal.call:{call.pk}",
            session=call.session_id,
            details={"worker": worker[:200], "agent": call.agent.get_username()},
        )
        notify.send_after_commit(
            call.agent_channel,
            {"type": "portal.media_ready", "call_id": str(call.pk), "control": control_channel},
        )
        notify.calls_changed_after_commit()
    return call


# --- the end ---------------------------------------------------------------------------------


def end_call(
    call_id: Any, reason: str, detail: str = "", *, actor: Any = None
) -> PortalCall | None:
    """End the call once (later calls keep the first reason): the customer's session and
    consent close, every party and every media worker is told."""
    if reason not in EndReason.values:
        raise ValueError(f"unknown end reason {reason!r}")
    with transaction.atomic():
        call = PortalCall.objects.select_for_update().filter(pk=call_id).first()
        if call is None or call.status == CallStatus.ENDED:
            return call
        was = call.status
        call.status = CallStatus.ENDED
        call.ended_at = timezone.now()
        call.end_reason, call.end_detail = reason, detail[:500]
        call.save(update_fields=["status", "ended_at", "end_reason", "end_detail"])
        end_kiosk_session(call.session_id, reason, detail)
        audit.record_event(
            actor or audit.Actor.system("portal"),
            "portal.call_ended",
            f"portal.call:{call.pk}",
            session=call.session_id,
            details={"reason": reason, "detail": detail[:200], "was": was},
        )
        ended = {"type": "portal.ended", "call_id": str(call.pk), "reason": reason}
        notify.send_after_commit(call.customer_channel, ended)
        notify.send_after_commit(call.agent_channel, ended)
        end_live_sessions(session_id=str(call.session_id), reason=reason, detail=detail)
        notify.queue_changed_after_commit(call.service)
        notify.calls_changed_after_commit()
    return call


def withdraw(call_id: Any) -> PortalCall | None:
    """The customer withdrew consent: the grant closes and the call ends at once."""
    call = selectors.get_call(call_id)
    if call is None:
        return None
    with transaction.atomic():
        withdraw_consent(call.session_id, method=WithdrawalMethod.WITHDRAW_BUTTON)
        return end_call(call_id, EndReason.WITHDRAWN, "withdraw_button")


# --- supervision -----------------------------------------------------------------------------


def allow_supervisor(call_id: Any, user: Any, allowed: bool) -> PortalCall:
    """The agent allows (or stops allowing) a supervisor to watch and listen."""
    with transaction.atomic():
        call = PortalCall.objects.select_for_update().filter(pk=call_id, agent=user).first()
        if call is None or call.status == CallStatus.ENDED:
            raise PortalError("not_in_call", "this is not your live call")
        call.supervisor_allowed = allowed
        call.save(update_fields=["supervisor_allowed"])
        notify.calls_changed_after_commit()
        audit.record_event(
            user,
            "portal.supervisor_allowed" if allowed else "portal.supervisor_refused",
            f"portal.call:{call.pk}",
            session=call.session_id,
        )
        if call.control_channel:
            notify.send_after_commit(
                call.control_channel,
                {"type": "call.supervisor", "session_id": str(call.session_id), "allowed": allowed},
            )
    return call


def supervisor_joins(call_id: Any, user: Any) -> PortalCall:
    """A supervisor starts watching (refused unless the agent allows it now); audited."""
    if not user.has_perm("portal.supervise_calls"):
        raise PortalError("not_agent", "this account may not supervise calls")
    with transaction.atomic():
        call = PortalCall.objects.select_for_update().filter(pk=call_id).first()
        if call is None or call.status == CallStatus.ENDED or not call.control_channel:
            raise PortalError("not_in_call", "this call is not live")
        if not call.supervisor_allowed:
            raise PortalError("not_allowed", "the agent does not allow a supervisor now")
        audit.record_event(
            user, "portal.supervisor_watched", f"portal.call:{call.pk}", session=call.session_id
        )
    return call


# --- one-time links for the customer's own browser ---------------------------------------------


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_home_link(user: Any, service: str) -> str:
    """A one-time link token for a customer's own browser (only its hash is stored)."""
    check_agent(user)
    if service not in Service.values:
        raise PortalError("unknown_service", f"service must be one of {', '.join(Service.values)}")
    token = secrets.token_urlsafe(24)
    with transaction.atomic():
        link = HomeLink.objects.create(
            token_sha256=token_hash(token),
            service=service,
            created_by=user,
            expires_at=timezone.now() + dt.timedelta(seconds=settings.PORTAL_LINK_TTL_S),
        )
        audit.record_event(
            user, "portal.link_created", f"portal.homelink:{link.pk}", details={"service": service}
        )
    return token


def home_link_usable(token: str) -> bool:
    return HomeLink.objects.filter(
        token_sha256=token_hash(token), used_at__isnull=True, expires_at__gt=timezone.now()
    ).exists()


def redeem_home_link(token: str) -> HomeLink:
    """Use a link once; a used, expired or unknown link is refused (``link_invalid``)."""
    with transaction.atomic():
        link = (
            HomeLink.objects.select_for_update()
            .filter(token_sha256=token_hash(token), used_at__isnull=True)
            .first()
        )
        if link is None or link.expires_at <= timezone.now():
            raise PortalError("link_invalid", "this link is not valid (used, expired or unknown)")
        link.used_at = timezone.now()
        link.save(update_fields=["used_at"])
        audit.record_event(
            audit.Actor.system("portal"), "portal.link_used", f"portal.homelink:{link.pk}"
        )
    return link


def home_kiosk() -> Kiosk:
    kiosk, _ = Kiosk.objects.get_or_create(
        slug=HOME_KIOSK, defaults={"name": "Customer's own browser (portal link)"}
    )
    return kiosk


def ensure_portal_setup() -> None:
    """Put back what the data migration made (roles, texts, the home kiosk) where it is
    missing: a fresh or flushed database (tests)."""
    from django.contrib.auth.models import Group, Permission

    from consent.models import ConsentText
    from kiosk.portal.texts import ROLE_PERMISSIONS, TEXTS

    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="portal", codename__in=codenames)
        )
    for purpose, language, title, body in TEXTS:
        if not ConsentText.objects.filter(purpose=purpose, language=language).exists():
            ConsentText.objects.create(
                purpose=purpose, language=language, version=1, title=title, body=body
            )
    home_kiosk()
