"""Consents and identities in the dashboard: lists, details with the proof export, and
revocation (administrators only, with a reason, audited), on real PostgreSQL."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from consent import services
from consent.models import AuditEvent, ConsentGrant, Identity, IdentityConsent
from kiosk.models import Kiosk
from tests.dashboard_support import login, staff_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def grant(db):
    services.ensure_shipped_texts()
    kiosk = Kiosk.objects.create(slug="counter-7", name="Counter 7", engine="label")
    session = services.start_kiosk_session(kiosk, consent_given=True, language="en")
    return ConsentGrant.objects.get(session=session)


@pytest.fixture
def presenter(db):
    identity = Identity.objects.create(name="Ms Presenter", kind="presenter")
    now = timezone.now()
    consent = services.record_identity_consent(
        identity,
        person_name="Li Na",
        document_reference="DOC-2026-0042",
        valid_from=now - dt.timedelta(days=1),
        valid_until=now + dt.timedelta(days=365),
        actor="system:test",
    )
    return identity, consent


def test_lists_and_details_with_the_proof_links(client, grant, presenter):
    identity, _consent = presenter
    login(client, staff_user("auditor"))
    page = client.get(reverse("dashboard:consents")).content.decode()
    assert "Counter 7" in page and reverse("dashboard:consent", args=[grant.pk]) in page
    page = client.get(reverse("dashboard:consents"), {"status": "withdrawn"}).content.decode()
    assert "Counter 7" not in page
    page = client.get(reverse("dashboard:consent", args=[grant.pk])).content.decode()
    assert grant.record_hash in page
    assert f"/consent/proof/session/{grant.session_id}/" in page
    assert "revoke-consent" not in page  # auditors change nothing
    # The proof the link leads to (the audit trail's export) opens for the auditor.
    assert client.get(f"/consent/proof/session/{grant.session_id}.json").status_code == 200
    page = client.get(reverse("dashboard:identities")).content.decode()
    assert "Ms Presenter" in page and "valid" in page
    page = client.get(reverse("dashboard:identity", args=[identity.pk])).content.decode()
    assert "DOC-2026-0042" in page and "/consent/proof/person/?ref=DOC-2026-0042" in page


def test_administrator_withdraws_a_consent_with_a_reason(
    client, grant, django_capture_on_commit_callbacks
):
    login(client, staff_user("administrator", "ada"))
    url = reverse("dashboard:consent-revoke", args=[grant.pk])
    response = client.post(url, {"reason": "", "confirm": "yes"}, follow=True)
    assert "A reason is required." in response.content.decode()
    grant.refresh_from_db()
    assert grant.withdrawn_at is None
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url, {"reason": "visitor asked at the counter", "confirm": "yes"}, follow=True
        )
    assert "The consent was withdrawn" in response.content.decode()
    grant.refresh_from_db()
    assert grant.withdrawn_at is not None and grant.withdrawal_method == "operator"
    assert grant.session.ended_at is not None and grant.session.end_reason == "withdrawn"
    event = AuditEvent.objects.get(action="consent.revoke")
    assert (event.actor, event.details["reason"]) == ("ada", "visitor asked at the counter")
    assert event.session_id == grant.session_id and event.details["kiosk"] == "counter-7"
    assert AuditEvent.objects.filter(action="consent.withdrawn", actor="ada").exists()
    response = client.post(url, {"reason": "again", "confirm": "yes"}, follow=True)
    assert "already withdrawn" in response.content.decode()


def test_administrator_revokes_an_identity_consent(
    client, presenter, django_capture_on_commit_callbacks
):
    identity, consent = presenter
    login(client, staff_user("administrator", "ada"))
    url = reverse("dashboard:identity-consent-revoke", args=[identity.pk, consent.pk])
    assert client.post(url, {"reason": "x"}, follow=True).status_code == 200  # unconfirmed
    consent.refresh_from_db()
    assert consent.revoked_at is None
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url, {"reason": "the person withdrew in writing", "confirm": "yes"}, follow=True
        )
    assert "was revoked" in response.content.decode()
    consent.refresh_from_db()
    assert consent.revoked_at is not None and consent.revoked_by == "user:ada"
    assert consent.revocation_reason == "the person withdrew in writing"
    event = AuditEvent.objects.get(action="identity_consent.revoked")
    assert (event.actor, event.details["reason"]) == ("ada", "the person withdrew in writing")
    page = client.get(reverse("dashboard:identity", args=[identity.pk])).content.decode()
    assert "none valid" in page
    # A consent of another identity cannot be revoked through this one's page.
    other = Identity.objects.create(name="Other", kind="presenter")
    response = client.post(
        reverse("dashboard:identity-consent-revoke", args=[other.pk, consent.pk]),
        {"reason": "x", "confirm": "yes"},
        follow=True,
    )
    assert "No such identity consent." in response.content.decode()


@pytest.mark.parametrize("role", ["auditor", "operator", None])
def test_only_administrators_revoke(client, grant, presenter, role):
    identity, consent = presenter
    login(client, staff_user(role))
    for url in (
        reverse("dashboard:consent-revoke", args=[grant.pk]),
        reverse("dashboard:identity-consent-revoke", args=[identity.pk, consent.pk]),
    ):
        assert client.post(url, {"reason": "no", "confirm": "yes"}).status_code == 403
    grant.refresh_from_db()
    assert grant.withdrawn_at is None
    assert IdentityConsent.objects.get(pk=consent.pk).revoked_at is None


def test_administrator_records_a_persons_consent(client, django_capture_on_commit_callbacks):
    identity = Identity.objects.create(name="Mr Presenter", kind="presenter")
    url = reverse("dashboard:identity-consent-record", args=[identity.pk])
    login(client, staff_user("auditor"))
    assert (
        "record-consent"
        not in client.get(reverse("dashboard:identity", args=[identity.pk])).content.decode()
    )
    data = {
        "person_name": "Zhang Wei",
        "document_reference": "DOC-9",
        "valid_from": "2026-01-01",
        "valid_until": "2027-12-31",
    }
    assert client.post(url, data).status_code == 403
    login(client, staff_user("administrator", "ada"))
    for bad, message in (
        ({**data, "valid_until": "2025-01-01"}, "must be after"),
        ({**data, "person_name": "  "}, "This field is required."),
        ({**data, "valid_from": "soon"}, "Enter a valid date."),
    ):
        response = client.post(url, bad)
        assert response.status_code == 400 and message in response.content.decode()
    assert not IdentityConsent.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, data, follow=True)
    assert "The person&#x27;s consent was recorded." in response.content.decode()
    consent = IdentityConsent.objects.get()
    assert (consent.person_name, consent.document_reference, consent.recorded_by) == (
        "Zhang Wei",
        "DOC-9",
        "user:ada",
    )
    assert consent.valid_from.date().isoformat() == "2026-01-01"
    assert AuditEvent.objects.filter(action="identity_consent.recorded", actor="ada").exists()
