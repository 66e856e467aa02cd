"""Django's admin for administrators: what they change there is audited too, and the
fusion switch cannot be changed there (only through the dashboard's audited service)."""

import pytest

from consent.models import AuditEvent
from kiosk.models import Kiosk
from tests.dashboard_support import login, staff_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def test_an_admin_change_is_audited_and_the_switch_stays_read_only(
    client, django_capture_on_commit_callbacks
):
    kiosk = Kiosk.objects.create(slug="hall-3", name="Hall 3", engine="label")
    login(client, staff_user("administrator", "ada"))
    url = f"/admin/kiosk/kiosk/{kiosk.pk}/change/"
    page = client.get(url).content.decode()
    assert 'name="fusion_enabled"' not in page  # read-only there
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url,
            {
                "slug": "hall-3",
                "name": "Hall 3 (renovated)",
                "location": "East wing",
                "engine": "label",
                "identity": "",
                "fusion_enabled": "",  # ignored: read-only in the admin
            },
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    kiosk.refresh_from_db()
    assert kiosk.name == "Hall 3 (renovated)" and kiosk.fusion_enabled is True
    event = AuditEvent.objects.get(action="admin.change")
    assert (event.actor, event.target) == ("ada", f"kiosk.kiosk:{kiosk.pk}")
    assert event.details["kiosk"] == "hall-3" and "Name" in event.details["reason"]
