"""Proof exports for one session and one person (JSON and the printable page) and the
record of processing, on real PostgreSQL, through the real URLs and permissions."""

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from consent import audit, services
from consent.models import AuditEvent, ConsentGrant, EndReason, Identity
from consent.verification import write_checkpoint
from kiosk.models import Kiosk
from tests.dashboard_support import login

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def auditor(django_user_model):
    user = django_user_model.objects.create_user("auditor1", password="pw-123456")
    user.user_permissions.add(
        Permission.objects.get(codename="view_consents", content_type__app_label="dashboard")
    )
    return user


@pytest.fixture
def ended_session(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_DIR = tmp_path
    kiosk = Kiosk.objects.create(slug="counter-9", name="Counter 9")
    session = services.start_kiosk_session(kiosk, consent_given=True, language="zh-hans")
    services.withdraw_consent(session.pk)
    audit.sweep_outbox()
    write_checkpoint()
    return session


def test_session_proof_json_has_every_record_and_hash(client, auditor, ended_session):
    login(client, auditor)
    response = client.get(f"/consent/proof/session/{ended_session.pk}.json")
    assert response.status_code == 200
    proof = response.json()
    assert proof["session"]["end_reason"] == EndReason.WITHDRAWN
    assert proof["grant"]["record_hash_matches"] is True
    assert proof["grant"]["withdrawal_method"] == "withdraw_button"
    [text] = proof["texts"]
    assert text["language"] == "zh-hans" and text["sha256_matches"] and "数字人" in text["body"]
    actions = [e["action"] for e in proof["audit"]["events"]]
    assert actions == ["consent.granted", "consent.withdrawn", "session.ended"]
    assert proof["audit"]["all_hashes_match"] is True
    assert proof["audit"]["checkpoint"]["seq"] >= proof["audit"]["events"][-1]["seq"]
    # The export is itself audited.
    audit.sweep_outbox()
    exported = AuditEvent.objects.get(action="proof.exported")
    assert exported.actor == "auditor1" and exported.session_id == ended_session.pk


def test_session_proof_page_is_printable_and_shows_a_broken_hash(client, auditor, ended_session):
    login(client, auditor)
    page = client.get(f"/consent/proof/session/{ended_session.pk}/").content.decode()
    grant = ConsentGrant.objects.get(session=ended_session)
    assert grant.record_hash in page and "✔ matches" in page and 'id="print"' in page
    # A grant changed behind the service's back no longer matches its hash.
    ConsentGrant.objects.filter(pk=grant.pk).update(
        expires_at=timezone.now() + dt.timedelta(days=9)
    )
    proof = client.get(f"/consent/proof/session/{ended_session.pk}.json").json()
    assert proof["grant"]["record_hash_matches"] is False
    assert (
        "✘ does not match"
        in client.get(f"/consent/proof/session/{ended_session.pk}/").content.decode()
    )


def test_person_proof_finds_identity_consents_and_their_events(client, auditor):
    identity = Identity.objects.create(name="Presenter A", kind="presenter")
    now = timezone.now()
    consent = services.record_identity_consent(
        identity,
        person_name="Ann Presenter",
        document_reference="DOC-77",
        valid_from=now - dt.timedelta(days=1),
        valid_until=now + dt.timedelta(days=9),
        actor="user:admin",
    )
    services.revoke_identity_consent(consent, actor="user:admin", reason="she asked")
    audit.sweep_outbox()
    login(client, auditor)
    proof = client.get("/consent/proof/person.json", {"ref": "DOC-77"}).json()
    [record] = proof["identity_consents"]
    assert record["record"]["person_name"] == "Ann Presenter"
    assert record["record_hash_matches"] and record["revocation_reason"] == "she asked"
    assert [e["action"] for e in proof["audit"]["events"]] == [
        "identity_consent.recorded",
        "identity_consent.revoked",
    ]
    assert client.get("/consent/proof/person/", {"ref": "Ann Presenter"}).status_code == 200
    bad = client.get("/consent/proof/person.json", {"ref": "  "})
    assert bad.status_code == 400 and "document reference" in bad.content.decode()


def test_record_of_processing_for_the_dpo(client, auditor, settings):
    settings.AUDIT_RETENTION_DAYS = 200
    login(client, auditor)
    data = client.get("/consent/record-of-processing.json").json()
    assert data["activities"][0]["retention"]["video_and_landmarks"] == "not retained"
    assert data["activities"][2]["retention"]["audit_events_days"] == 200
    assert {t["purpose"] for t in data["consent_texts_in_force"]} == {
        "face_processing",
        "presenter_face",
        "agent_call",  # the portal's call consent (kiosk/portal)
    }
    assert "Security measures" in client.get("/consent/record-of-processing/").content.decode()


def test_exports_need_the_permission(client, django_user_model, ended_session):
    assert client.get(f"/consent/proof/session/{ended_session.pk}.json").status_code in (302, 403)
    login(client, django_user_model.objects.create_user("nobody"))
    assert client.get(f"/consent/proof/session/{ended_session.pk}.json").status_code == 403
    assert client.get("/consent/record-of-processing.json").status_code == 403


def test_unknown_session_is_404(client, auditor):
    login(client, auditor)
    assert (
        client.get("/consent/proof/session/00000000-0000-0000-0000-000000000000.json").status_code
        == 404
    )
