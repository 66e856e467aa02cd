"""Least privilege in the audit: personal identifiers (document references, person names)
appear only to staff who may read consents; an operator's search and exports show them
masked; the audit row itself keeps only keyed hashes (enough to match)."""

import datetime as dt
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from consent import audit, services
from consent.models import AuditEvent, Identity
from consent.pii import pii_hash
from tests.dashboard_support import login, staff_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

DOCUMENT = "DOC-SECRET-4242"
PERSON = "Zhang Weiming"


@pytest.fixture
def identity_consent(db):
    identity = Identity.objects.create(name="Presenter A", kind="presenter")
    now = timezone.now()
    consent = services.record_identity_consent(
        identity,
        person_name=PERSON,
        document_reference=DOCUMENT,
        valid_from=now - dt.timedelta(days=1),
        valid_until=now + dt.timedelta(days=365),
        actor="system:test",
    )
    # Events written before this rule carried the identifiers in clear.
    audit.record_event(
        "user:ada", "proof.exported", f"person:{DOCUMENT}", details={"format": "html"}
    )
    audit.record_event(
        "user:ada",
        "identity_consent.recorded",
        identity,
        details={"identity_consent": consent.pk, "document_reference": DOCUMENT},
    )
    audit.sweep_outbox()
    return consent


def exports(client) -> dict[str, str]:
    bodies = {}
    for name in ("dashboard:audit", "dashboard:audit-csv", "dashboard:audit-json"):
        response = client.get(reverse(name))
        assert response.status_code == 200
        content = response.streaming_content if response.streaming else [response.content]
        bodies[name] = b"".join(content).decode()
    return bodies


def test_the_audit_row_keeps_only_keyed_hashes(identity_consent):
    event = AuditEvent.objects.filter(action="identity_consent.recorded").order_by("seq").first()
    assert event.details["document_reference"] == pii_hash(DOCUMENT)
    assert event.details["person_name"] == pii_hash(PERSON)
    assert DOCUMENT not in json.dumps(event.details) and PERSON not in json.dumps(event.details)


def test_an_operator_sees_no_document_number_or_name(client, identity_consent):
    login(client, staff_user("operator", "olga"))
    for name, body in exports(client).items():
        assert "identity_consent.recorded" in body, name
        assert DOCUMENT not in body, name
        assert PERSON not in body, name
    assert "[masked]" in exports(client)["dashboard:audit-json"]


def test_an_auditor_who_may_read_consents_sees_them(client, identity_consent):
    login(client, staff_user("auditor", "audrey"))
    data = json.loads(exports(client)["dashboard:audit-json"])
    recorded = [e for e in data["events"] if e["action"] == "identity_consent.recorded"]
    assert {e["personal"]["document_reference"] for e in recorded} == {DOCUMENT}
    assert {e["personal"]["person_name"] for e in recorded} == {PERSON}
    assert any(e["target"] == f"person:{DOCUMENT}" for e in data["events"])  # unmasked
    assert DOCUMENT in exports(client)["dashboard:audit-csv"]


def test_a_person_proof_export_is_audited_by_keyed_hash(client, identity_consent):
    login(client, staff_user("auditor", "audrey"))
    response = client.get(reverse("consent:person-proof-json"), {"ref": DOCUMENT})
    assert response.status_code == 200
    audit.sweep_outbox()
    event = AuditEvent.objects.filter(action="proof.exported").order_by("-seq").first()
    assert event.target == f"person:{pii_hash(DOCUMENT)}"
