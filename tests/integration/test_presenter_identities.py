"""The shipped presenters are identity rows a kiosk can choose; the first is the default for
the demo kiosk and for new kiosks; the old default avatar stays available."""

import numpy as np
import pytest

from consent.models import Identity
from consent.selectors import identity_usable
from kiosk.models import Kiosk
from media_engine.engines import presenter_catalog as pc
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
