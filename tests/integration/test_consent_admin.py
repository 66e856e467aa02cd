"""The Django admin goes through the consent services: a text is published as a new
version (never reworded), an identity consent gets its hash, each is audited."""

import pytest

from consent import audit, selectors
from consent.models import AuditEvent, ConsentText, Identity, IdentityConsent, Purpose

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def test_adding_a_text_publishes_the_next_version(admin_client):
    current = selectors.current_text(Purpose.FACE_PROCESSING, "en")
    response = admin_client.post(
        "/admin/consent/consenttext/add/",
        {"purpose": "face_processing", "language": "en", "title": "New", "body": "New words."},
    )
    assert response.status_code == 302, response.content[:2000]
    newest = selectors.current_text(Purpose.FACE_PROCESSING, "en")
    assert newest.version == current.version + 1 and newest.body == "New words."
    assert ConsentText.objects.get(pk=current.pk).body == current.body
    audit.sweep_outbox()
    assert AuditEvent.objects.get(action="consent_text.published").actor == "admin"
    # No rewording of a stored version through the admin.
    page = admin_client.get(f"/admin/consent/consenttext/{current.pk}/change/")
    assert b'name="body"' not in page.content


def test_adding_an_identity_consent_goes_through_the_service(admin_client):
    identity = Identity.objects.create(name="Presenter D", kind="presenter")
    response = admin_client.post(
        "/admin/consent/identityconsent/add/",
        {
            "identity": identity.pk,
            "person_name": "Dana",
            "document_reference": "DOC-ADMIN-1",
            "valid_from_0": "2026-01-01",
            "valid_from_1": "00:00:00",
            "valid_until_0": "2030-01-01",
            "valid_until_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    consent = IdentityConsent.objects.get()
    assert consent.record_hash and consent.recorded_by == "user:admin"
    audit.sweep_outbox()
    assert AuditEvent.objects.filter(action="identity_consent.recorded").count() == 1
