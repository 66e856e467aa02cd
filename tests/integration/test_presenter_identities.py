"""The shipped presenters are identity rows a kiosk can choose; the first is the default for
the demo kiosk and for new kiosks; the old default avatar stays available."""

import numpy as np
import pytest

from consent.models import Identity
from consent.selectors import identity_usable
from kiosk.models import Kiosk
from media_engine.engines import presenter as pc
from media_engine.engines.registry import create_engine
from media_engine.identities import load_identity_image

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def test_each_shipped_presenter_is_a_synthetic_identity_row():
    for slug in pc.SHIPPED:
        row = Identity.objects.get(asset=pc.asset_name(slug))
        assert row.synthetic and row.kind == "avatar" and not row.portrait
        assert pc.read_rig(slug)["display_name"]["en"] in row.name
        assert identity_usable(row.pk)  # synthetic: no depicted person's consent needed
    assert Identity.objects.filter(asset="avatar_default", synthetic=True).exists()


def test_the_demo_kiosk_and_new_kiosks_show_the_first_presenter():
    first = Identity.objects.get(asset=pc.asset_name(pc.DEFAULT_PRESENTER))
    assert Kiosk.objects.get(slug="demo").identity_id == first.pk
    new = Kiosk.objects.create(slug="counter-9", name="Counter 9")
    assert new.identity_id == first.pk
    # a kiosk may choose another presenter, or none
    other = Identity.objects.get(asset=pc.asset_name(pc.SHIPPED[1]))
    chosen = Kiosk.objects.create(slug="counter-10", name="Counter 10", identity=other)
    assert Kiosk.objects.get(pk=chosen.pk).identity_id == other.pk


@pytest.mark.parametrize("slug", pc.SHIPPED)
def test_a_presenter_identity_drives_the_avatar_engine(slug):
    row = Identity.objects.get(asset=pc.asset_name(slug))
    image = load_identity_image(row.pk)
    _, face = pc.flat_presenter(slug)
    assert image.image.shape == (720, 1280, 3) and image.presenter == slug
    engine = create_engine("avatar", image)
    # the shipped layers and landmarks are used (no perception needed for a shipped presenter)
    assert np.array_equal(engine.rig.face, face)
    frame = np.zeros((480, 640, 3), np.uint8)
    out = engine.render(frame, None)
    assert out.shape == (480, 640, 3) and out.std() > 10


@pytest.mark.parametrize("slug", pc.SHIPPED)
def test_a_presenter_identity_is_one_flat_portrait_for_the_portrait_engines(slug):
    """The swap engine's portrait of a presenter identity is the rig at rest with the
    landmarks it was drawn from, found by the identity's ``presenter`` field."""
    from media_engine.engines.portraits import portrait_for

    row = Identity.objects.get(asset=pc.asset_name(slug))
    image = load_identity_image(row.pk)
    flat, face = pc.flat_presenter(slug)
    assert np.array_equal(image.image, flat)
    assert np.array_equal(flat, pc.load_presenter(slug).at_rest())
    portrait = portrait_for(image)
    assert portrait.image is flat and np.array_equal(portrait.landmarks, face)


def test_an_unknown_presenter_identity_is_a_clear_error():
    from media_engine.identities import IdentityUnavailable

    row = Identity.objects.create(name="Nobody", kind="avatar", synthetic=True,
                                  asset="presenter_nobody")  # fmt: skip
    with pytest.raises(IdentityUnavailable, match="not a shipped presenter"):
        load_identity_image(row.pk)
