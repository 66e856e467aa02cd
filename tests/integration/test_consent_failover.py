"""A call moved to another media worker: the old session ends abnormally (audited) and a
new session row carries the same consent while it is valid, never after."""

import datetime as dt

import pytest
from django.utils import timezone

from consent import services
from consent.audit_models import AuditOutbox
from consent.models import AuditEvent, ConsentGrant, EndReason, KioskSession
from kiosk.models import Engine, Kiosk

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def kiosk(db):
    return Kiosk.objects.create(slug="counter-9", name="Counter 9", engine=Engine.AVATAR)


def actions(session_id) -> list[str]:
    return [
        row.action
        for model in (AuditEvent, AuditOutbox)
        for row in model.objects.filter(session_id=session_id)
    ]


def test_failover_ends_the_old_session_and_carries_the_consent(kiosk):
    old = services.start_kiosk_session(kiosk, consent_given=True, language="en")
    new = services.fail_over_kiosk_session(old.pk, "heartbeat of w1 expired")
    assert new is not None and new.pk != old.pk
    old.refresh_from_db()
    assert old.end_reason == EndReason.ERROR and "worker lost" in old.end_detail
    assert new.ended_at is None and new.consent_given and new.engine == old.engine
    old_grant = ConsentGrant.objects.get(session=old)
    new_grant = ConsentGrant.objects.get(session=new)
    assert old_grant.withdrawn_at is not None and new_grant.withdrawn_at is None
    assert (new_grant.given_at, new_grant.expires_at) == (old_grant.given_at, old_grant.expires_at)
    assert new_grant.text_versions == old_grant.text_versions
    assert list(new_grant.texts.all()) == list(old_grant.texts.all())
    assert new_grant.record_hash != old_grant.record_hash  # it names the new session
    assert "session.ended" in actions(old.pk)
    assert "session.failed_over" in actions(new.pk)


def test_no_failover_once_the_consent_expired_or_was_withdrawn(kiosk):
    expired = services.start_kiosk_session(kiosk, consent_given=True, language="en")
    ConsentGrant.objects.filter(session=expired).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    assert services.fail_over_kiosk_session(expired.pk, "gone") is None
    expired.refresh_from_db()
    assert expired.end_reason == EndReason.ERROR  # the abnormal end is still recorded

    withdrawn = services.start_kiosk_session(kiosk, consent_given=True, language="en")
    services.withdraw_consent(withdrawn.pk)
    assert services.fail_over_kiosk_session(withdrawn.pk, "gone") is None
    assert KioskSession.objects.count() == 2  # no new row for either


def test_the_failed_over_call_keeps_the_kiosks_one_call_claim(kiosk):
    from kiosk import calls
    from kiosk import services as kiosk_services
    from kiosk.models import KioskCall

    old = services.start_kiosk_session(kiosk, consent_given=True, language="en")
    assert calls.claim(kiosk, str(old.pk), None)
    new = kiosk_services.fail_over(str(old.pk), "heartbeat of w1 expired", kiosk.pk)
    assert new is not None
    assert KioskCall.objects.get(kiosk=kiosk).session_id == str(new.pk)
    # the re-offer under the new row is this kiosk's call, another one is still refused
    assert calls.claim(kiosk, str(new.pk), None)
    other = services.start_kiosk_session(kiosk, consent_given=True, language="en")
    assert not calls.claim(kiosk, str(other.pk), None)
    # when the consent no longer holds, the claim stays with the old row until the visit's
    # end releases it (no new row takes it)
    services.withdraw_consent(new.pk)
    assert kiosk_services.fail_over(str(new.pk), "gone", kiosk.pk) is None
    assert KioskCall.objects.get(kiosk=kiosk).session_id == str(new.pk)
    calls.release(kiosk.pk, str(new.pk))
    assert calls.claim(kiosk, str(other.pk), None)


def test_a_stale_claim_taken_over_ends_the_displaced_session_everywhere(
    kiosk, redis_layer, control_listener, django_capture_on_commit_callbacks, settings
):
    """The daphne that held the kiosk's call died: the kiosk's next call takes the claim
    over, and the call it displaced ends (lost connection, audited) on every worker."""
    from kiosk import calls, devices
    from kiosk import services as kiosk_services
    from kiosk.models import KioskCall
    from tests.integration.conftest import read_message
    from tests.support.enrolment import enrol

    device = devices.authenticate(kiosk.slug, enrol(kiosk.slug))
    lost = services.start_kiosk_session(kiosk, consent_given=True, language="en")
    assert kiosk_services.admit_call(kiosk, device.pk, str(lost.pk)) == ""
    next_visit = services.start_kiosk_session(kiosk, consent_given=True, language="en")
    assert kiosk_services.admit_call(kiosk, device.pk, str(next_visit.pk)) == "kiosk_busy"
    lost.refresh_from_db()
    assert lost.ended_at is None

    stale = timezone.now() - dt.timedelta(seconds=settings.KIOSK_CALL_STALE_S + 1)
    KioskCall.objects.filter(kiosk=kiosk).update(heartbeat_at=stale)
    with django_capture_on_commit_callbacks(execute=True):
        assert kiosk_services.admit_call(kiosk, device.pk, str(next_visit.pk)) == ""
    lost.refresh_from_db()
    assert lost.end_reason == EndReason.DISCONNECT and "took over" in lost.end_detail
    assert "session.ended" in actions(lost.pk)
    assert ConsentGrant.objects.get(session=lost).withdrawn_at is not None
    assert read_message(control_listener) == {
        "type": "sessions.end",
        "session_id": str(lost.pk),
        "reason": EndReason.DISCONNECT,
        "detail": lost.end_detail,
    }
    assert KioskCall.objects.get(kiosk=kiosk).session_id == str(next_visit.pk)
    assert calls.claim(kiosk, str(next_visit.pk), None).displaced == "", "its own claim again"
    next_visit.refresh_from_db()
    assert next_visit.ended_at is None
