"""Reads about consent (plain functions)."""

from __future__ import annotations

import datetime as dt

from django.db.models import Max, Q, QuerySet
from django.utils import timezone

from consent.models import ConsentGrant, ConsentText, Identity, IdentityConsent, Purpose

CONSENT_LANGUAGES = ("zh-hans", "en")


def current_text(purpose: str, language: str) -> ConsentText | None:
    """The newest version of one consent text (the one a kiosk must show)."""
    return (
        ConsentText.objects.filter(purpose=purpose, language=language).order_by("-version").first()
    )


def current_texts(purposes: tuple[str, ...] = (Purpose.FACE_PROCESSING,)) -> list[ConsentText]:
    """The newest version of each consent text for the given purposes, in every language."""
    texts = []
    for purpose in purposes:
        for language in CONSENT_LANGUAGES:
            newest = ConsentText.objects.filter(purpose=purpose, language=language).aggregate(
                v=Max("version")
            )["v"]
            if newest is not None:
                texts.append(
                    ConsentText.objects.get(purpose=purpose, language=language, version=newest)
                )
    return texts


def valid_identity_consents(at: dt.datetime | None = None) -> QuerySet[IdentityConsent]:
    at = at or timezone.now()
    return IdentityConsent.objects.filter(
        valid_from__lte=at, valid_until__gt=at, revoked_at__isnull=True
    )


def identity_consent_valid(identity: Identity, at: dt.datetime | None = None) -> bool:
    """A synthetic identity needs no consent; a real person's needs a valid one now."""
    if identity.synthetic:
        return True
    return valid_identity_consents(at).filter(identity=identity).exists()


def identity_usable(identity_id: int | None) -> bool:
    """For the media worker: may this identity be rendered now? (None: the default.)"""
    if identity_id is None:
        return True
    identity = Identity.objects.filter(pk=identity_id).first()
    return identity is not None and identity_consent_valid(identity)


def selectable_identities(at: dt.datetime | None = None) -> QuerySet[Identity]:
    """The identities an operator may select for a kiosk."""
    consented = valid_identity_consents(at).values("identity_id")
    return Identity.objects.filter(Q(synthetic=True) | Q(pk__in=consented))


def active_grant(session_id) -> ConsentGrant | None:
    """The session's consent if it still allows processing (given, not withdrawn, not
    expired)."""
    return (
        ConsentGrant.objects.filter(
            session_id=session_id, withdrawn_at__isnull=True, expires_at__gt=timezone.now()
        )
        .select_related("session")
        .first()
    )
