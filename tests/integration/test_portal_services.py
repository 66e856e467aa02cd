"""The portal's queue, consents and audit on the real database (kiosk/portal/services.py)."""

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from consent.audit_models import AuditOutbox
from consent.models import ConsentGrant, EndReason, Identity, IdentityKind
from consent.services import record_identity_consent, revoke_identity_consent
from kiosk.models import Kiosk
from kiosk.portal import selectors, services
from kiosk.portal.models import AgentProfile, CallStatus
from tests.dashboard_support import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def kiosk():
    services.ensure_portal_setup()
    return Kiosk.objects.get_or_create(slug="demo", defaults={"name": "Demo"})[0]


def agent(name: str = "ann", *, presenter: bool = False):
    user = get_user_model().objects.create_user(username=name, password=PASSWORD)
    user.groups.add(Group.objects.get(name="agent"))
    if presenter:
        identity = Identity.objects.create(
            name=f"{name} presenter", kind=IdentityKind.PRESENTER, portrait=b"x"
        )
    else:
        identity = Identity.objects.create(
            name="avatar", kind=IdentityKind.AVATAR, asset="avatar_default", synthetic=True
        )
    AgentProfile.objects.create(user=user, display_name=name, engine="avatar", identity=identity)
    return get_user_model().objects.get(pk=user.pk)  # fresh permission cache


def join(kiosk, service="cards", **kw):
    text = selectors.call_text("en")
    return services.join_queue(
        kiosk,
        service=service,
        language="en",
        text_sha256=text.sha256,
        blur=kw.get("blur", False),
        customer_channel="test!c",
    )


def test_the_queue_is_per_service_in_order_and_agents_get_the_longest_waiting(kiosk):
    first, second = join(kiosk), join(kiosk)
    other = join(kiosk, "accounts")
    assert [selectors.queue_position(c) for c in (first, second, other)] == [1, 2, 1]
    snapshot = selectors.queue_snapshot()
    assert [c["call_id"] for c in snapshot["cards"]] == [str(first.pk), str(second.pk)]
    taken = services.accept_call(agent(), agent_channel="test!a", service="cards")
    assert taken.pk == first.pk and taken.status == CallStatus.ACCEPTED
    second.refresh_from_db()
    assert selectors.queue_position(second) == 1
    with pytest.raises(services.PortalError) as refused:
        services.accept_call(agent("bob"), agent_channel="x", call_id=first.pk)
    assert refused.value.code == "queue_empty"


def test_the_call_consent_is_a_grant_with_its_text_and_audited(kiosk):
    call = join(kiosk, blur=True)
    grant = ConsentGrant.objects.get(session_id=call.session_id)
    assert grant.purposes == ["agent_call"]
    assert grant.text_versions[0]["sha256"] == selectors.call_text("en").sha256
    actions = set(
        AuditOutbox.objects.filter(session_id=call.session_id).values_list("action", flat=True)
    )
    assert {"consent.granted", "portal.queue_joined"} <= actions
    with pytest.raises(services.PortalError) as outdated:
        services.join_queue(
            kiosk,
            service="cards",
            language="en",
            text_sha256="0" * 64,
            blur=False,
            customer_channel="c",
        )
    assert outdated.value.code == "consent_outdated"
    with pytest.raises(services.PortalError) as unknown:
        services.join_queue(
            kiosk, service="loans", language="en", text_sha256="", blur=False, customer_channel="c"
        )
    assert unknown.value.code == "unknown_service"


def test_an_agent_without_a_valid_identity_consent_cannot_take_a_call(kiosk):
    join(kiosk)
    presenter = agent("cai", presenter=True)
    with pytest.raises(services.PortalError) as refused:
        services.accept_call(presenter, agent_channel="a", service="cards")
    assert refused.value.code == "agent_not_consented"
    now = timezone.now()
    consent = record_identity_consent(
        presenter.portal_agent.identity,
        person_name="Cai",
        document_reference="DOC-1",
        valid_from=now - dt.timedelta(days=1),
        valid_until=now + dt.timedelta(days=1),
        actor="system:test",
    )
    call = services.accept_call(presenter, agent_channel="a", service="cards")
    event = AuditOutbox.objects.get(session_id=call.session_id, action="portal.call_accepted")
    assert event.details["identity_consent_hash"] == consent.record_hash
    services.end_call(call.pk, EndReason.BYE, "test")
    revoke_identity_consent(consent, actor="system:test", reason="left the bank")
    join(kiosk)
    with pytest.raises(services.PortalError):
        services.accept_call(presenter, agent_channel="a", service="cards")


def test_ending_is_recorded_once_and_withdrawal_closes_the_grant(kiosk):
    call = join(kiosk)
    services.withdraw(call.pk)
    call.refresh_from_db()
    assert call.status == CallStatus.ENDED and call.end_reason == EndReason.WITHDRAWN
    assert ConsentGrant.objects.get(session_id=call.session_id).withdrawal_method == (
        "withdraw_button"
    )
    services.end_call(call.pk, EndReason.BYE)
    call.refresh_from_db()
    assert call.end_reason == EndReason.WITHDRAWN
    assert (
        AuditOutbox.objects.filter(session_id=call.session_id, action="portal.call_ended").count()
        == 1
    )


def test_a_customer_who_never_comes_back_leaves_the_queue(kiosk, settings):
    call = join(kiosk)
    settings.PORTAL_QUEUE_STALE_S = 0
    assert selectors.queue_snapshot()["cards"] == []
    with pytest.raises(services.PortalError):
        services.accept_call(agent(), agent_channel="a", service="cards")
    call.refresh_from_db()
    assert call.status == CallStatus.ENDED and call.end_reason == EndReason.DISCONNECT


def test_a_home_link_works_once(kiosk):
    token = services.create_home_link(agent(), "accounts")
    assert services.home_link_usable(token)
    services.redeem_home_link(token)
    assert not services.home_link_usable(token)
    with pytest.raises(services.PortalError) as used:
        services.redeem_home_link(token)
    assert used.value.code == "link_invalid"
    with pytest.raises(services.PortalError):
        services.redeem_home_link("not-a-token")


def test_a_supervisor_watches_only_when_the_agent_allows_and_it_is_audited(kiosk):
    ann = agent()
    call = join(kiosk)
    services.accept_call(ann, agent_channel="a", call_id=call.pk)
    call.refresh_from_db()
    call.control_channel = "worker!x"
    call.save()
    boss = get_user_model().objects.create_user(username="boss", password=PASSWORD)
    boss.groups.add(Group.objects.get(name="supervisor"))
    boss = get_user_model().objects.get(pk=boss.pk)
    with pytest.raises(services.PortalError) as refused:
        services.supervisor_joins(call.pk, boss)
    assert refused.value.code == "not_allowed"
    services.allow_supervisor(call.pk, ann, True)
    services.supervisor_joins(call.pk, boss)
    with pytest.raises(services.PortalError):
        services.supervisor_joins(call.pk, ann)  # an agent is not a supervisor
    actions = list(
        AuditOutbox.objects.filter(session_id=call.session_id).values_list("action", "actor")
    )
    assert ("portal.supervisor_allowed", "ann") in actions
    assert ("portal.supervisor_watched", "boss") in actions
