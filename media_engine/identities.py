"""Load the identity (avatar or presenter portrait) an engine renders, from its row."""

import cv2
import numpy as np

from media_engine.assets import cached_verified_path
from media_engine.engines.base import IdentityImage
from media_engine.engines.presenter_catalog import flat_presenter, slug_of


class IdentityUnavailable(RuntimeError):
    """The identity does not exist or its portrait cannot be decoded."""


def decode_portrait(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise IdentityUnavailable("the identity's portrait is not a readable image")
    return image


def load_identity_image(identity_id: int) -> IdentityImage:
    """Synchronous (Django ORM): call from a thread when on the event loop."""
    from consent.models import Identity

    identity = Identity.objects.filter(pk=identity_id).first()
    if identity is None:
        raise IdentityUnavailable(f"identity {identity_id} does not exist")
    from consent.selectors import identity_consent_valid

    if not identity_consent_valid(identity):
        raise IdentityUnavailable(
            f"identity {identity_id} has no valid consent of the person it depicts"
        )
    from media_engine.engines.presenter import PresenterError, load_presenter, slug_of_asset

    slug = slug_of_asset(identity.asset)
    if slug is not None and not identity.portrait:
        try:
            rest = load_presenter(slug).at_rest()
        except PresenterError as exc:
            raise IdentityUnavailable(str(exc)) from exc
        return IdentityImage(identity.pk, identity.name, rest, presenter=slug)
    if identity.portrait:
        image = decode_portrait(bytes(identity.portrait))
    elif slug_of(identity.asset):
        image, _ = flat_presenter(slug_of(identity.asset))
    elif identity.asset:
        image = cv2.imread(str(cached_verified_path(identity.asset)), cv2.IMREAD_COLOR)
        if image is None:
            raise IdentityUnavailable(f"asset {identity.asset!r} is not a readable image")
    else:
        raise IdentityUnavailable(f"identity {identity_id} has neither a portrait nor an asset")
    return IdentityImage(identity_id=identity.pk, name=identity.name, image=image)
