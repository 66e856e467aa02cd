"""Consent on real PostgreSQL: grants with text versions and hashes, a new version asks
again, withdrawal, the path without the digital human, expiry, identity consents and
revocation; each leaves its audit events and ends live processing through the control
group every media worker listens to."""

import asyncio
import datetime as dt

import pytest
from channels.layers import get_channel_layer
from django.utils import timezone

from consent import audit, selectors, services
from consent.models import (
    AuditEvent,
    ConsentGrant,
    ConsentText,
    EndReason,
    Identity,
    KioskSession,
    ProcessingMode,
    Purpose,
    text_sha256,
)
from kiosk.models import Engine, Kiosk
from media_engine.protocol import CONTROL_GROUP

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def kiosk(db):
    return Kiosk.objects.create(slug="counter-3", name="Counter 3", engine=Engine.AVATAR)


@pytest.fixture
def presenter(db):
    return Identity.objects.create(name="Ms Presenter", kind="presenter", portrait=b"")


@pytest.fixture
def control_listener():
    """A channel in the media workers' control group (the in-memory layer of the tests)."""
    layer = get_channel_layer()
    channel = asyncio.run(layer.new_channel())
    asyncio.run(layer.group_add(CONTROL_GROUP, channel))

    def received() -> list[dict]:
        async def drain() -> list[dict]:
            found = []
            while True:
                try:
                    found.append(await asyncio.wait_for(layer.receive(channel), 0.2))
                except TimeoutError:
                    return found

        return asyncio.run(drain())

    yield received
    asyncio.run(layer.group_discard(CONTROL_GROUP, channel))


def actions(session=None) -> list[str]:
    audit.sweep_outbox()
    events = AuditEvent.objects.order_by("seq")
    if session is not None:
        events = events.filter(session_id=session.pk)
    return list(events.values_list("action", flat=True))


def test_grant_records_texts_versions_hashes_and_expiry(kiosk, settings):
    settings.CONSENT_GRANT_TTL_S = 600
    text = selectors.current_text(Purpose.FACE_PROCESSING, "en")
    session = services.start_kiosk_session(
        kiosk, consent_given=True, language="en", text_sha256=text.sha256
    )
    grant = ConsentGrant.objects.get(session=session)
    assert session.consent_given and session.mode == ProcessingMode.DIGITAL_HUMAN
    assert grant.purposes == ["face_processing"]
    assert grant.text_versions == [
        {
            "purpose": "face_processing",
            "language": "en",
            "version": text.version,
            "sha256": text.sha256,
        }
    ]
    assert list(grant.texts.all()) == [text]
    assert grant.method == "screen_button" and grant.language == "en"
    assert (
        dt.timedelta(seconds=599) < grant.expires_at - grant.given_at <= dt.timedelta(seconds=600)
    )
    assert grant.record_hash == services.record_hash(services.grant_record(grant))
    assert actions(session) == ["consent.granted"]
    event = AuditEvent.objects.get(action="consent.granted")
    assert event.details["record_hash"] == grant.record_hash
    assert event.details["texts"][0]["sha256"] == text.sha256
    assert selectors.active_grant(session.pk) == grant


def test_a_presenter_kiosk_asks_for_both_purposes(kiosk):
    kiosk.engine = Engine.SWAP
    kiosk.save()
    session = services.start_kiosk_session(kiosk, consent_given=True, language="zh-hans")
    assert session.grant.purposes == ["face_processing", "presenter_face"]
    assert {t["language"] for t in session.grant.text_versions} == {"zh-hans"}


def test_a_new_text_version_makes_the_kiosk_ask_again(kiosk, django_user_model):
    old = selectors.current_text(Purpose.FACE_PROCESSING, "en")
    dpo = django_user_model.objects.create_user("dpo")
    new = services.publish_consent_text(
        Purpose.FACE_PROCESSING, "en", old.title, old.body + "\n\nNew paragraph.", actor=dpo
    )
    assert new.version == old.version + 1 and new.sha256 != old.sha256
    with pytest.raises(services.ConsentTextOutdated, match="ask again"):
        services.start_kiosk_session(
            kiosk, consent_given=True, language="en", text_sha256=old.sha256
        )
    assert not KioskSession.objects.exists()
    session = services.start_kiosk_session(
        kiosk, consent_given=True, language="en", text_sha256=new.sha256
    )
    assert session.grant.text_versions[0]["version"] == new.version
    published = AuditEvent.objects.filter(action="consent_text.published")
    audit.sweep_outbox()
    published = AuditEvent.objects.get(action="consent_text.published")
    assert (published.actor, published.details["sha256"]) == ("dpo", new.sha256)


def test_a_stored_text_version_is_never_reworded():
    text = selectors.current_text(Purpose.FACE_PROCESSING, "en")
    text.body = "something else"
    with pytest.raises(ValueError, match="publish a new one"):
        text.save()
    stored = ConsentText.objects.get(pk=text.pk)
    assert stored.body != "something else" and stored.sha256 == text_sha256(stored.body)


def test_bad_input_is_refused(kiosk):
    with pytest.raises(ValueError, match="no consent text"):
        services.start_kiosk_session(kiosk, consent_given=True, language="fr")
    with pytest.raises(ValueError, match="unknown purpose"):
        services.publish_consent_text("marketing", "en", "t", "b", actor="system")
    with pytest.raises(ValueError, match="withdrawal method"):
        services.withdraw_consent("00000000-0000-0000-0000-000000000000", method="shout")
    assert not KioskSession.objects.exists()


def test_without_the_digital_human_is_recorded_and_has_no_grant(kiosk):
    session = services.start_kiosk_session(kiosk, consent_given=False, language="zh-hans")
    assert session.mode == ProcessingMode.WITHOUT_DIGITAL_HUMAN
    assert not session.consent_given and session.engine == ""
    assert not ConsentGrant.objects.exists()
    assert selectors.active_grant(session.pk) is None
    services.end_kiosk_session(session.pk, EndReason.BYE)
    assert actions(session) == ["session.without_digital_human", "session.ended"]


def test_withdrawal_ends_processing_and_is_audited(
    kiosk, control_listener, django_capture_on_commit_callbacks
):
    session = services.start_kiosk_session(kiosk, consent_given=True, language="en")
    with django_capture_on_commit_callbacks(execute=True):
        services.withdraw_consent(session.pk)
    session.refresh_from_db()
    assert session.end_reason == EndReason.WITHDRAWN and session.ended_at is not None
    grant = ConsentGrant.objects.get(session=session)
    assert grant.withdrawn_at is not None and grant.withdrawal_method == "withdraw_button"
    assert selectors.active_grant(session.pk) is None
    messages = control_listener()
    assert messages == [
        {
            "type": "sessions.end",
            "session_id": str(session.pk),
            "reason": "withdrawn",
            "detail": "withdraw_button",
        }
    ]
    # Withdrawing again changes nothing and sends nothing.
    with django_capture_on_commit_callbacks(execute=True):
        services.withdraw_consent(session.pk)
    assert control_listener() == []
    assert actions(session) == ["consent.granted", "consent.withdrawn", "session.ended"]


def test_closing_the_session_withdraws_the_consent(kiosk):
    stopped = services.start_kiosk_session(kiosk, consent_given=True, language="en")
    left = services.start_kiosk_session(kiosk, consent_given=True, language="en")
    services.end_kiosk_session(stopped.pk, EndReason.BYE, "visitor pressed stop")
    services.end_kiosk_session(left.pk, EndReason.DISCONNECT)
    assert ConsentGrant.objects.get(session=stopped).withdrawal_method == "stop_button"
    assert ConsentGrant.objects.get(session=left).withdrawal_method == "session_closed"
    assert actions(stopped) == ["consent.granted", "consent.ended_with_session", "session.ended"]


def test_expiry_ends_the_live_session(kiosk, control_listener, django_capture_on_commit_callbacks):
    session = services.start_kiosk_session(kiosk, consent_given=True, language="en")
    other = services.start_kiosk_session(kiosk, consent_given=True, language="en")
    grant = ConsentGrant.objects.get(session=session)
    with django_capture_on_commit_callbacks(execute=True):
        ended = services.end_expired_sessions(now=grant.expires_at - dt.timedelta(seconds=1))
    assert ended == []
    ConsentGrant.objects.filter(session=session).update(expires_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        ended = services.end_expired_sessions()
    assert ended == [str(session.pk)]
    session.refresh_from_db()
    assert session.end_reason == EndReason.EXPIRED
    assert KioskSession.objects.get(pk=other.pk).ended_at is None
    assert [m["session_id"] for m in control_listener()] == [str(session.pk)]
    assert actions(session) == ["consent.granted", "consent.expired", "session.ended"]


def test_identity_without_valid_consent_cannot_be_selected(kiosk, presenter, django_user_model):
    admin = django_user_model.objects.create_user("admin1")
    assert not selectors.identity_consent_valid(presenter)
    assert presenter not in selectors.selectable_identities()
    with pytest.raises(services.IdentityNotConsented):
        services.assign_identity(kiosk, presenter, actor=admin)
    now = timezone.now()
    services.record_identity_consent(
        presenter,
        person_name="Mei Presenter",
        document_reference="DOC-2026-0042",
        valid_from=now + dt.timedelta(days=1),
        valid_until=now + dt.timedelta(days=30),
        actor=admin,
    )
    assert not selectors.identity_consent_valid(presenter)  # not valid yet
    consent = services.record_identity_consent(
        presenter,
        person_name="Mei Presenter",
        document_reference="DOC-2026-0043",
        valid_from=now - dt.timedelta(days=1),
        valid_until=now + dt.timedelta(days=30),
        actor=admin,
    )
    assert selectors.identity_consent_valid(presenter)
    assert selectors.identity_usable(presenter.pk)
    services.assign_identity(kiosk, presenter, actor=admin)
    assert Kiosk.objects.get(pk=kiosk.pk).identity == presenter
    assert consent.record_hash == services.record_hash(services.identity_consent_record(consent))
    with pytest.raises(ValueError, match="after valid_from"):
        services.record_identity_consent(
            presenter,
            person_name="x",
            document_reference="y",
            valid_from=now,
            valid_until=now,
            actor=admin,
        )


def test_revoking_an_identity_consent_ends_its_live_sessions_at_once(
    kiosk, presenter, control_listener, django_capture_on_commit_callbacks
):
    now = timezone.now()
    consent = services.record_identity_consent(
        presenter,
        person_name="Mei",
        document_reference="DOC-1",
        valid_from=now - dt.timedelta(days=1),
        valid_until=now + dt.timedelta(days=1),
        actor="user:admin1",
    )
    kiosk.identity = presenter
    kiosk.save()
    live = services.start_kiosk_session(kiosk, consent_given=True, language="en")
    assert live.identity == presenter
    with django_capture_on_commit_callbacks(execute=True):
        ended = services.revoke_identity_consent(consent, actor="user:admin1", reason="asked")
    assert ended == 1
    live.refresh_from_db()
    assert live.end_reason == EndReason.REVOKED
    assert control_listener() == [
        {
            "type": "sessions.end",
            "identity_id": presenter.pk,
            "reason": "revoked",
            "detail": "identity consent revoked",
        }
    ]
    assert not selectors.identity_usable(presenter.pk)
    # A new session at that kiosk does not render the revoked identity.
    assert services.start_kiosk_session(kiosk, consent_given=True, language="en").identity is None
    assert "identity_consent.revoked" in actions()
    assert actions(live)[-1] == "session.ended"


def test_consent_proofs_are_kept_three_years_then_pruned(kiosk, presenter):
    from consent.retention import prune_consent_proofs

    old = services.start_kiosk_session(kiosk, consent_given=True, language="en")
    services.end_kiosk_session(old.pk, EndReason.BYE)
    recent = services.start_kiosk_session(kiosk, consent_given=True, language="en")
    services.end_kiosk_session(recent.pk, EndReason.BYE)
    live = services.start_kiosk_session(kiosk, consent_given=True, language="en")
    four_years_ago = timezone.now() - dt.timedelta(days=4 * 365)
    KioskSession.objects.filter(pk=old.pk).update(ended_at=four_years_ago)
    lapsed = services.record_identity_consent(
        presenter,
        person_name="P",
        document_reference="D-old",
        valid_from=four_years_ago - dt.timedelta(days=30),
        valid_until=four_years_ago,
        actor="user:admin",
    )
    with pytest.raises(ValueError, match="at least 1096"):
        prune_consent_proofs(days=365)
    counts = prune_consent_proofs()
    assert counts == {"grants": 1, "sessions": 1, "identity_consents": 1}
    assert set(KioskSession.objects.values_list("pk", flat=True)) == {recent.pk, live.pk}
    assert ConsentGrant.objects.count() == 2
    assert not type(lapsed).objects.filter(pk=lapsed.pk).exists()
    audit.sweep_outbox()
    event = AuditEvent.objects.get(action="consent.retention_applied")
    assert event.details["grants"] == 1 and event.details["days"] >= 1096
