"""What staff do from the dashboard, besides the switch (kiosk/switch.py)."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from consent.models import (
    ConsentGrant,
    EndReason,
    Identity,
    IdentityConsent,
    KioskSession,
    WithdrawalMethod,
)
from consent.services import (
    end_kiosk_session,
    record_identity_consent,
    revoke_identity_consent,
    withdraw_consent,
)
from kiosk import broadcast
from kiosk.dashboard.roles import END_SESSION, MANAGE_IDENTITIES, REVOKE_CONSENT
from kiosk.dashboard.staff_audit import clean_reason, record_staff_action
from media_engine import protocol

log = logging.getLogger(__name__)


def end_live_session(
    user: AbstractBaseUser, session_id: uuid.UUID | str, reason: str
) -> KioskSession:
    """End a live kiosk session: recorded as ended by an operator, audited with the
    operator's reason, and every media worker told to stop it (``sessions.end``)."""
    if not user.has_perm(END_SESSION):
        raise PermissionDenied("only operators may end sessions")
    reason = clean_reason(reason)
    with transaction.atomic():
        session = (
            KioskSession.objects.select_for_update(of=("self",))
            .select_related("kiosk")
            .filter(pk=session_id)
            .first()
        )
        if session is None:
            raise ValidationError(_("No such session."), code="unknown_session")
        if session.ended_at is not None:
            raise ValidationError(_("This session has already ended."), code="already_ended")
        sid = str(session.pk)
        broadcast.to_workers_after_commit(
            protocol.sessions_end(session_id=sid, reason=EndReason.OPERATOR, detail=reason)
        )
        record_staff_action(
            user,
            "session.end",
            target=f"session:{session.pk}",
            reason=reason,
            kiosk=session.kiosk.slug,
            session_id=session.pk,
            details={"worker": session.worker},
        )
        session = end_kiosk_session(session.pk, EndReason.OPERATOR, reason)
    return session


def announce_session_end(session_id: str, detail: str) -> bool:
    return broadcast.to_workers(
        protocol.sessions_end(session_id=session_id, reason=EndReason.OPERATOR, detail=detail)
    )


def revoke_visitor_consent(user: AbstractBaseUser, grant_id: uuid.UUID | str, reason: str) -> None:
    """Withdraw a visitor's consent for them (e.g. they asked at the counter): the grant is
    closed, the session ends and every media worker stops processing it. Audited with the
    staff member's reason, beside the consent trail's own ``consent.withdrawn``."""
    if not user.has_perm(REVOKE_CONSENT):
        raise PermissionDenied("only administrators may revoke consents")
    reason = clean_reason(reason)
    with transaction.atomic():
        grant = (
            ConsentGrant.objects.select_for_update(of=("self",))
            .select_related("kiosk")
            .filter(pk=grant_id)
            .first()
        )
        if grant is None:
            raise ValidationError(_("No such consent."), code="unknown_consent")
        if grant.withdrawn_at is not None:
            raise ValidationError(_("This consent was already withdrawn."), code="withdrawn")
        record_staff_action(
            user,
            "consent.revoke",
            target=f"consent.consentgrant:{grant.pk}",
            reason=reason,
            kiosk=grant.kiosk.slug,
            session_id=grant.session_id,
        )
        withdraw_consent(
            grant.session_id, method=WithdrawalMethod.OPERATOR, actor=user, detail=reason
        )


def revoke_identity(user: AbstractBaseUser, consent_id: int, reason: str) -> int:
    """Revoke a depicted person's consent to an identity; live sessions that render it end
    at once when no other valid consent remains. Returns how many sessions ended."""
    if not user.has_perm(REVOKE_CONSENT):
        raise PermissionDenied("only administrators may revoke consents")
    reason = clean_reason(reason)
    consent = IdentityConsent.objects.filter(pk=consent_id).first()
    if consent is None:
        raise ValidationError(_("No such identity consent."), code="unknown_consent")
    if consent.revoked_at is not None:
        raise ValidationError(_("This identity consent was already revoked."), code="revoked")
    # The consent trail records ``identity_consent.revoked`` with the actor and the reason.
    return revoke_identity_consent(consent, actor=user, reason=reason)


def record_identity(
    user: AbstractBaseUser,
    identity_id: int,
    *,
    person_name: str,
    document_reference: str,
    valid_from: dt.datetime,
    valid_until: dt.datetime,
) -> IdentityConsent:
    """Record a depicted person's consent to an identity (administrators; audited by the
    consent trail as ``identity_consent.recorded``)."""
    if not user.has_perm(MANAGE_IDENTITIES):
        raise PermissionDenied("only administrators may record identity consents")
    identity = Identity.objects.filter(pk=identity_id).first()
    if identity is None:
        raise ValidationError(_("No such identity."), code="unknown_identity")
    try:
        return record_identity_consent(
            identity,
            person_name=person_name,
            document_reference=document_reference,
            valid_from=valid_from,
            valid_until=valid_until,
            actor=user,
        )
    except ValueError as exc:
        raise ValidationError(str(exc), code="invalid") from None
