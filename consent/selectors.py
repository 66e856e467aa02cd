"""Reads about consent (plain functions)."""

from django.db.models import Max

from consent.models import ConsentText, Purpose

CONSENT_LANGUAGES = ("zh-hans", "en")


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
