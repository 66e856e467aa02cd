"""POST /provenance/verify: staff only, rate limited, clear errors, the session id only for
roles that may read sessions, every verification audited."""

import uuid

import pytest
from django.test import Client

from consent.audit_models import AuditEvent, AuditOutbox
from consent.models import KioskSession
from kiosk.models import Kiosk
from tests.dashboard_support import login, staff_user
from tests.provenance.support import fused_frames, png

pytestmark = pytest.mark.django_db
URL = "/provenance/verify"
SESSION_ID = str(uuid.uuid4())


@pytest.fixture(scope="module")
def marked_png() -> bytes:
    return png(fused_frames(SESSION_ID, 2, engine="label")[-1])


@pytest.fixture
def session(db) -> KioskSession:
    kiosk = Kiosk.objects.create(slug="hall", name="Hall")
    return KioskSession.objects.create(id=SESSION_ID, kiosk=kiosk, engine="label")


def audited() -> int:
    ids = set(AuditOutbox.objects.filter(action="provenance.verify").values_list("event_id"))
    ids |= set(AuditEvent.objects.filter(action="provenance.verify").values_list("event_id"))
    return len(ids)


def upload(client: Client, content: bytes, name: str = "shot.png"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(URL, {"image": SimpleUploadedFile(name, content)})


def test_anonymous_callers_are_refused(client, marked_png):
    response = upload(client, marked_png)
    assert response.status_code == 401
    assert response.json()["error"] == "login_required"
    assert audited() == 0


def test_users_without_a_role_are_refused(client, marked_png):
    client.force_login(staff_user(None))
    response = upload(client, marked_png)
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"


def test_auditor_sees_the_session_and_the_verification_is_audited(client, marked_png, session):
    login(client, staff_user("auditor"))
    response = upload(client, marked_png)
    assert response.status_code == 200
    answer = response.json()
    assert answer["ai_generated"] is True
    assert answer["session_id"] == SESSION_ID
    assert set(answer) == {"ai_generated", "confidence", "installation", "session_id", "minute"}
    assert audited() == 1


def test_operator_gets_the_answer_without_the_session(client, marked_png, session):
    login(client, staff_user("operator"))
    answer = upload(client, marked_png).json()
    assert answer["ai_generated"] is True
    assert answer["session_id"] is None
    assert audited() == 1


def test_a_file_that_is_not_an_image_is_a_clear_error(client):
    login(client, staff_user("auditor"))
    response = upload(client, b"%PDF-1.7 this is not a picture", name="report.pdf")
    assert response.status_code == 400
    assert response.json()["error"] == "not_an_image"
    assert "not a picture" in response.json()["message"]
    assert audited() == 0


def test_a_request_without_the_image_field_is_a_clear_error(client):
    login(client, staff_user("auditor"))
    response = client.post(URL, {"file": "x"})
    assert response.status_code == 400
    assert response.json()["error"] == "no_image"


def test_get_is_not_allowed(client):
    login(client, staff_user("auditor"))
    assert client.get(URL).status_code == 405


def test_verifications_are_rate_limited_per_person(client, marked_png, settings):
    settings.PROVENANCE_VERIFY_PER_MINUTE = 2
    login(client, staff_user("auditor"))
    assert [upload(client, marked_png).status_code for _ in range(3)] == [200, 200, 429]
    assert audited() == 2


def test_uploads_over_the_limit_are_refused(client, marked_png, settings):
    settings.PROVENANCE_MAX_UPLOAD_BYTES = 1000
    login(client, staff_user("auditor"))
    response = upload(client, marked_png)
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"


def test_csrf_is_checked_for_logged_in_staff(marked_png):
    client = Client(enforce_csrf_checks=True)
    login(client, staff_user("auditor"))
    assert upload(client, marked_png).status_code == 403
    assert audited() == 0


def test_staff_without_their_second_factor_are_refused(client, marked_png):
    client.force_login(staff_user("operator"))  # password only, no TOTP yet
    response = upload(client, marked_png)
    assert response.status_code == 403
    assert audited() == 0
