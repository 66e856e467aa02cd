"""Writes about consent and kiosk sessions (plain functions; consumers and views call these).

Every write here leaves its audit event (consent.audit.record_event) in the same
transaction. Ending processing for live sessions is a ``sessions.end`` message to every
media worker (media_engine.protocol.CONTROL_GROUP), sent once the transaction commits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import logging
import uuid
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from consent import audit, chain, pii
from consent.models import (
    ConsentGrant,
    ConsentMethod,
    ConsentText,
    EndReason,
    Identity,
    IdentityConsent,
    KioskSession,
    ProcessingMode,
    Purpose,
    WithdrawalMethod,
)
from consent.selectors import current_text, identity_consent_valid
from kiosk.models import Engine, Kiosk

log = logging.getLogger(__name__)


class ConsentTextOutdated(ValueError):
    """The visitor read a text that is no longer the current version: ask again."""


class IdentityNotConsented(ValueError):
    """The identity has no valid consent of the person it depicts."""


# --- consent texts -----------------------------------------------------------------------


def publish_consent_text(
    purpose: str, language: str, title: str, body: str, *, actor: Any
) -> ConsentText:
    """A new version of a consent text; kiosks ask for consent again against it."""
    if purpose not in Purpose.values:
        raise ValueError(f"unknown purpose {purpose!r}")
    if not body.strip() or not title.strip():
        raise ValueError("a consent text needs a title and a body")
    with transaction.atomic():
        newest = (
            ConsentText.objects.select_for_update()
            .filter(purpose=purpose, language=language)
            .aggregate(v=Max("version"))["v"]
        )
        text = ConsentText.objects.create(
            purpose=purpose, language=language, version=(newest or 0) + 1, title=title, body=body
        )
        audit.record_event(
            actor,
            "consent_text.published",
            text,
            details={
                "purpose": purpose,
                "language": language,
                "version": text.version,
                "sha256": text.sha256,
            },
        )
    return text


def ensure_shipped_texts() -> None:
    """Put back the first versions shipped with the project where a purpose and language
    has no text at all (a fresh or emptied database)."""
    shipped = importlib.import_module("consent.migrations.0002_consent_texts_v1").TEXTS
    for purpose, language, title, body in shipped:
        if not ConsentText.objects.filter(purpose=purpose, language=language).exists():
            ConsentText.objects.get_or_create(
                purpose=purpose,
                language=language,
                version=1,
                defaults={"title": title, "body": body},
            )


# --- kiosk sessions and the visitor's consent ---------------------------------------------


def purposes_for(kiosk: Kiosk) -> list[str]:
    purposes = [Purpose.FACE_PROCESSING.value]
    if kiosk.engine in (Engine.SWAP, Engine.INSIGHTFACE):
        purposes.append(Purpose.PRESENTER_FACE.value)
    return purposes


def grant_record(grant: ConsentGrant) -> dict[str, Any]:
    """What the grant's ``record_hash`` covers (also shown in the proof export)."""
    return {
        "grant": str(grant.pk),
        "session": str(grant.session_id),
        "kiosk": grant.kiosk.slug,
        "purposes": list(grant.purposes),
        "texts": list(grant.text_versions),
        "language": grant.language,
        "method": grant.method,
        "given_at": chain.canonical_time(grant.given_at),
        "expires_at": chain.canonical_time(grant.expires_at),
    }


def record_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(chain.canonical_json(record)).hexdigest()


def session_identity(kiosk: Kiosk) -> Identity | None:
    """The kiosk's identity if it may be used now (valid consent, or synthetic)."""
    identity = kiosk.identity
    if identity is None or identity_consent_valid(identity):
        return identity
    return None


def start_kiosk_session(
    kiosk: Kiosk,
    *,
    consent_given: bool,
    language: str = "",
    text_sha256: str = "",
    method: str = ConsentMethod.SCREEN_BUTTON,
) -> KioskSession:
    """The visitor chose on the consent screen.

    ``consent_given`` True: a session with the digital human and its :class:`ConsentGrant`
    (texts, versions and hashes as shown, expiry). ``text_sha256`` is the hash of the
    face-processing text the kiosk showed; if it is not the current version's,
    :class:`ConsentTextOutdated` is raised and nothing is stored (the kiosk asks again).
    ``consent_given`` False: the path without the digital human, recorded as such; no face
    is processed.
    """
    language = language or settings.LANGUAGE_CODE
    with transaction.atomic():
        if not consent_given:
            session = KioskSession.objects.create(
                kiosk=kiosk,
                consent_given=False,
                consent_language=language,
                engine="",
                mode=ProcessingMode.WITHOUT_DIGITAL_HUMAN,
            )
            audit.record_event(
                audit.Actor.kiosk(kiosk),
                "session.without_digital_human",
                f"kiosk:{kiosk.slug}",
                session=session,
                details={"language": language},
            )
            return session
        texts = [current_text(purpose, language) for purpose in purposes_for(kiosk)]
        if any(t is None for t in texts):
            ensure_shipped_texts()
            texts = [current_text(purpose, language) for purpose in purposes_for(kiosk)]
        if any(t is None for t in texts):
            raise ValueError(f"no consent text in language {language!r}")
        if text_sha256 and text_sha256 != texts[0].sha256:
            raise ConsentTextOutdated(
                f"the consent text shown (sha256 {text_sha256[:12]}…) is not the current "
                f"version {texts[0].version}: show the new text and ask again"
            )
        identity = session_identity(kiosk)
        session = KioskSession.objects.create(
            kiosk=kiosk,
            consent_given=True,
            consent_language=language,
            engine=kiosk.engine,
            identity=identity,
            mode=ProcessingMode.DIGITAL_HUMAN,
        )
        now = timezone.now()
        grant = ConsentGrant(
            session=session,
            kiosk=kiosk,
            purposes=[t.purpose for t in texts],
            text_versions=[
                {
                    "purpose": t.purpose,
                    "language": t.language,
                    "version": t.version,
                    "sha256": t.sha256,
                }
                for t in texts
            ],
            language=language,
            method=method,
            given_at=now,
            expires_at=now + dt.timedelta(seconds=settings.CONSENT_GRANT_TTL_S),
        )
        grant.record_hash = record_hash(grant_record(grant))
        grant.save()
        grant.texts.set(texts)
        record_grant_given(kiosk, session, grant, identity=identity.pk if identity else None)
    return session


def record_grant_given(
    kiosk: Kiosk, session: KioskSession, grant: ConsentGrant, **details: Any
) -> None:
    """The audit event of a consent given at a kiosk (``details`` adds to the grant's own)."""
    audit.record_event(
        audit.Actor.kiosk(kiosk),
        "consent.granted",
        f"kiosk:{kiosk.slug}",
        session=session,
        details={
            "grant": str(grant.pk),
            "purposes": grant.purposes,
            "texts": grant.text_versions,
            "language": grant.language,
            "method": grant.method,
            "expires_at": chain.canonical_time(grant.expires_at),
            "record_hash": grant.record_hash,
            **details,
        },
    )


def _close_grant(session_id: uuid.UUID | str, method: str, actor: Any, action: str) -> bool:
    """Mark the session's active grant withdrawn; True when it was still active."""
    now = timezone.now()
    grant = (
        ConsentGrant.objects.select_for_update()
        .filter(session_id=session_id, withdrawn_at__isnull=True)
        .select_related("kiosk")
        .first()
    )
    if grant is None:
        return False
    grant.withdrawn_at = now
    grant.withdrawal_method = method
    grant.save(update_fields=["withdrawn_at", "withdrawal_method"])
    audit.record_event(
        actor or audit.Actor.kiosk(grant.kiosk),
        action,
        f"kiosk:{grant.kiosk.slug}",
        session=session_id,
        details={"grant": str(grant.pk), "method": method, "record_hash": grant.record_hash},
    )
    return True


def end_live_sessions(
    *, session_id: str | None = None, identity_id: int | None = None, reason: str, detail: str
) -> None:
    """Tell every media worker to end the matching sessions, once the transaction commits."""
    from kiosk import broadcast
    from media_engine import protocol

    broadcast.to_workers_after_commit(
        protocol.sessions_end(
            session_id=session_id, identity_id=identity_id, reason=reason, detail=detail
        )
    )


def withdraw_consent(
    session_id: uuid.UUID | str,
    *,
    method: str = WithdrawalMethod.WITHDRAW_BUTTON,
    actor: Any = None,
    detail: str = "",
) -> KioskSession | None:
    """The visitor withdrew (button on screen, or an operator for them): the grant is
    closed, the session ends with reason ``withdrawn`` and every media worker stops
    processing it. Idempotent: a second call changes nothing."""
    if method not in WithdrawalMethod.values:
        raise ValueError(f"unknown withdrawal method {method!r}")
    with transaction.atomic():
        closed = _close_grant(session_id, method, actor, "consent.withdrawn")
        session = end_kiosk_session(session_id, EndReason.WITHDRAWN, detail or method)
        if closed:
            end_live_sessions(session_id=str(session_id), reason=EndReason.WITHDRAWN, detail=method)
    return session


_CLOSING_METHOD = {
    EndReason.BYE: WithdrawalMethod.STOP_BUTTON,
    EndReason.OPERATOR: WithdrawalMethod.OPERATOR,
}


def end_kiosk_session(
    session_id: uuid.UUID | str, reason: str, detail: str = ""
) -> KioskSession | None:
    """Record the end of a session once; later calls keep the first reason.

    Ending a session also ends its consent (closing the session is a withdrawal: the grant
    is marked withdrawn with how the session closed) and leaves a ``session.ended`` event.
    """
    if reason not in EndReason.values:
        raise ValueError(f"unknown end reason {reason!r}")
    with transaction.atomic():
        updated = KioskSession.objects.filter(pk=session_id, ended_at__isnull=True).update(
            ended_at=timezone.now(), end_reason=reason, end_detail=detail[:500]
        )
        session = KioskSession.objects.filter(pk=session_id).select_related("kiosk").first()
        if not updated or session is None:
            return session
        if reason not in (EndReason.WITHDRAWN, EndReason.EXPIRED):
            method = _CLOSING_METHOD.get(reason, WithdrawalMethod.SESSION_CLOSED)
            _close_grant(session_id, method, None, "consent.ended_with_session")
        audit.record_event(
            audit.Actor.kiosk(session.kiosk),
            "session.ended",
            f"kiosk:{session.kiosk.slug}",
            session=session,
            details={"reason": reason, "detail": detail[:200], "mode": session.mode},
        )
    return session


def fail_over_kiosk_session(session_id: uuid.UUID | str, detail: str) -> KioskSession | None:
    """The media worker serving ``session_id`` died: record the abnormal end, and when the
    visitor's consent is still valid, open a new session row carrying the same consent (the
    same texts, time given and expiry) for the call on another worker. ``None`` when the
    consent no longer holds (withdrawn, expired): the visit ends there."""
    now = timezone.now()
    with transaction.atomic():
        old = (
            ConsentGrant.objects.select_for_update()
            .filter(session_id=session_id, withdrawn_at__isnull=True, expires_at__gt=now)
            .select_related("kiosk", "session")
            .first()
        )
        end_kiosk_session(session_id, EndReason.ERROR, f"media worker lost: {detail}"[:500])
        if old is None:
            return None
        session = KioskSession.objects.create(
            kiosk=old.kiosk,
            consent_given=True,
            consent_language=old.language,
            engine=old.session.engine,
            identity_id=old.session.identity_id,
            mode=ProcessingMode.DIGITAL_HUMAN,
        )
        grant = ConsentGrant(
            session=session,
            kiosk=old.kiosk,
            purposes=old.purposes,
            text_versions=old.text_versions,
            language=old.language,
            method=old.method,
            given_at=old.given_at,
            expires_at=old.expires_at,
        )
        grant.record_hash = record_hash(grant_record(grant))
        grant.save()
        grant.texts.set(old.texts.all())
        audit.record_event(
            audit.Actor.kiosk(old.kiosk),
            "session.failed_over",
            f"kiosk:{old.kiosk.slug}",
            session=session,
            details={
                "from_session": str(session_id),
                "from_grant": str(old.pk),
                "grant": str(grant.pk),
                "record_hash": grant.record_hash,
                "detail": detail[:200],
            },
        )
    return session


def record_worker(session_id: uuid.UUID | str, worker: str) -> None:
    KioskSession.objects.filter(pk=session_id).update(worker=worker[:200])


def end_expired_sessions(now: dt.datetime | None = None) -> list[str]:
    """End the live sessions whose consent expired (the periodic job); returns their ids."""
    now = now or timezone.now()
    ended = []
    with transaction.atomic():
        expired = list(
            ConsentGrant.objects.select_for_update(skip_locked=True)
            .filter(expires_at__lte=now, withdrawn_at__isnull=True)
            .select_related("kiosk")
        )
        for grant in expired:
            grant.withdrawn_at = now
            grant.withdrawal_method = ""
            grant.save(update_fields=["withdrawn_at", "withdrawal_method"])
            audit.record_event(
                audit.Actor.system("consent-expiry"),
                "consent.expired",
                f"kiosk:{grant.kiosk.slug}",
                session=grant.session_id,
                details={
                    "grant": str(grant.pk),
                    "expires_at": chain.canonical_time(grant.expires_at),
                },
            )
            end_kiosk_session(grant.session_id, EndReason.EXPIRED, "consent expired")
            end_live_sessions(
                session_id=str(grant.session_id),
                reason=EndReason.EXPIRED,
                detail="consent expired",
            )
            ended.append(str(grant.session_id))
    return ended


# --- identity consents ----------------------------------------------------------------------


def identity_consent_record(consent: IdentityConsent) -> dict[str, Any]:
    return {
        "identity": consent.identity_id,
        "person_name": consent.person_name,
        "document_reference": consent.document_reference,
        "valid_from": chain.canonical_time(consent.valid_from),
        "valid_until": chain.canonical_time(consent.valid_until),
        "recorded_by": consent.recorded_by,
        "recorded_at": chain.canonical_time(consent.recorded_at),
    }


def record_identity_consent(
    identity: Identity,
    *,
    person_name: str,
    document_reference: str,
    valid_from: dt.datetime,
    valid_until: dt.datetime,
    actor: Any,
) -> IdentityConsent:
    """The depicted person's consent to this identity, as signed on paper or elsewhere."""
    who = audit.as_actor(actor)
    if not person_name.strip() or not document_reference.strip():
        raise ValueError("an identity consent names the person and the document reference")
    if timezone.is_naive(valid_from) or timezone.is_naive(valid_until):
        raise ValueError("validity times must be timezone-aware")
    if valid_until <= valid_from:
        raise ValueError("valid_until must be after valid_from")
    with transaction.atomic():
        consent = IdentityConsent(
            identity=identity,
            person_name=person_name.strip()[:200],
            document_reference=document_reference.strip()[:200],
            valid_from=valid_from,
            valid_until=valid_until,
            recorded_by=str(who)[:200],
            recorded_at=timezone.now(),
        )
        consent.record_hash = record_hash(identity_consent_record(consent))
        consent.save()
        audit.record_event(
            who,
            "identity_consent.recorded",
            identity,
            details={
                "identity_consent": consent.pk,
                # Keyed hashes, never the identifiers (consent.pii): enough to match.
                "document_reference": pii.pii_hash(consent.document_reference),
                "person_name": pii.pii_hash(consent.person_name),
                "valid_from": chain.canonical_time(valid_from),
                "valid_until": chain.canonical_time(valid_until),
                "record_hash": consent.record_hash,
            },
        )
    return consent


def revoke_identity_consent(consent: IdentityConsent, *, actor: Any, reason: str) -> int:
    """Revoke it; if the identity has no other valid consent, end at once every live
    session that renders it. Returns how many sessions were ended."""
    who = audit.as_actor(actor)
    with transaction.atomic():
        consent = IdentityConsent.objects.select_for_update().get(pk=consent.pk)
        if consent.revoked_at is not None:
            return 0
        consent.revoked_at = timezone.now()
        consent.revoked_by = str(who)[:200]
        consent.revocation_reason = reason[:500]
        consent.save(update_fields=["revoked_at", "revoked_by", "revocation_reason"])
        identity = consent.identity
        audit.record_event(
            who,
            "identity_consent.revoked",
            identity,
            details={"identity_consent": consent.pk, "reason": reason[:200]},
        )
        if identity_consent_valid(identity):
            return 0
        live = list(
            KioskSession.objects.filter(identity=identity, ended_at__isnull=True).values_list(
                "pk", flat=True
            )
        )
        for session_id in live:
            end_kiosk_session(session_id, EndReason.REVOKED, "identity consent revoked")
        end_live_sessions(
            identity_id=identity.pk, reason=EndReason.REVOKED, detail="identity consent revoked"
        )
        return len(live)


def assign_identity(kiosk: Kiosk, identity: Identity | None, *, actor: Any) -> Kiosk:
    """Select the identity a kiosk renders; one without a valid consent is refused."""
    if identity is not None and not identity_consent_valid(identity):
        raise IdentityNotConsented(f"{identity.name} has no valid consent of the person it depicts")
    with transaction.atomic():
        kiosk.identity = identity
        kiosk.save(update_fields=["identity"])
        audit.record_event(
            actor,
            "kiosk.identity_selected",
            kiosk,
            details={"identity": identity.pk if identity else None},
        )
    return kiosk
