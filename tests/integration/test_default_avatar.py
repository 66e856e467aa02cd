"""The old default avatar stays a chosen-able identity row (the demo kiosk now shows the first
shipped presenter: tests/integration/test_presenter_identities.py)."""

import numpy as np
import pytest

from consent.models import Identity
from kiosk.models import Kiosk
from media_engine.engines.portraits import default_avatar
from media_engine.engines.registry import create_engine
from media_engine.identities import load_identity_image

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def test_the_default_avatar_is_a_synthetic_identity_row():
    avatar = Identity.objects.get(asset="avatar_default")
    assert avatar.synthetic and avatar.kind == "avatar" and not avatar.portrait


def test_a_kiosk_that_chose_the_old_default_avatar_still_drives_the_avatar_engine():
    avatar = Identity.objects.get(asset="avatar_default")
    kiosk = Kiosk.objects.create(slug="old-avatar", name="Old avatar", identity=avatar)
    image = load_identity_image(kiosk.identity_id)
    assert np.array_equal(image.image, default_avatar().image)
    engine = create_engine(kiosk.engine, image)
    # The shipped landmarks are used (no perception needed for the shipped avatar), and the
    # portrait is cut into a presenter rig once per worker.
    assert np.array_equal(engine.rig.face, default_avatar().landmarks)
    assert create_engine(kiosk.engine, image).rig is engine.rig
    frame = np.zeros((480, 640, 3), np.uint8)
    assert engine.render(frame, None).shape == (480, 640, 3)


def test_an_identity_naming_a_missing_presenter_is_refused_clearly():
    from media_engine.identities import IdentityUnavailable

    row = Identity.objects.create(
        name="Nobody", kind="avatar", asset="presenter:nobody", synthetic=True
    )
    with pytest.raises(IdentityUnavailable, match="nobody"):
        load_identity_image(row.pk)
