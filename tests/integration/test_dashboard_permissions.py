"""Every dashboard view and action for every role, and for anonymous visitors.

Auditor: reads everything, changes nothing. Operator: the switch and ending sessions.
Administrator: everything, and Django's admin. Anonymous: the login page, nothing else.
"""

import pytest
from django.urls import reverse

from consent.models import Identity, KioskSession
from kiosk.models import FusionSwitch, Kiosk
from kiosk.services import ensure_demo_kiosk
from tests.dashboard_support import login, staff_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

ROLES = [None, "auditor", "operator", "administrator"]


@pytest.fixture
def live_session(db):
    kiosk = ensure_demo_kiosk()
    return KioskSession.objects.create(kiosk=kiosk, consent_given=True, engine="label")


@pytest.fixture
def identity(db):
    return Identity.objects.create(name="Test presenter", kind="presenter")


@pytest.fixture
def grant(db):
    from consent import services

    services.ensure_shipped_texts()
    kiosk = Kiosk.objects.create(slug="counter-5", name="Counter 5", engine="label")
    session = services.start_kiosk_session(kiosk, consent_given=True, language="en")
    return session.grant


@pytest.fixture
def identity_consent(identity):
    import datetime as dt

    from django.utils import timezone

    from consent import services

    now = timezone.now()
    return services.record_identity_consent(
        identity,
        person_name="Wang Fang",
        document_reference="DOC-7",
        valid_from=now - dt.timedelta(days=1),
        valid_until=now + dt.timedelta(days=30),
        actor="system:test",
    )


def pages(live_session, identity, grant=None):
    extra = {"consent": reverse("dashboard:consent", args=[grant.pk])} if grant else {}
    return {
        **extra,
        "live": reverse("dashboard:live"),
        "live-json": reverse("dashboard:live-json"),
        "kiosks": reverse("dashboard:kiosks"),
        "audit": reverse("dashboard:audit"),
        "audit-csv": reverse("dashboard:audit-csv"),
        "audit-json": reverse("dashboard:audit-json"),
        "consents": reverse("dashboard:consents"),
        "identities": reverse("dashboard:identities"),
        "identity": reverse("dashboard:identity", args=[identity.pk]),
    }


# Which role may open which page (anonymous users always go to the login page).
PAGE_ACCESS = {
    "live": {"auditor", "operator", "administrator"},
    "live-json": {"auditor", "operator", "administrator"},
    "kiosks": {"auditor", "operator", "administrator"},
    "audit": {"auditor", "operator", "administrator"},
    "audit-csv": {"auditor", "operator", "administrator"},
    "audit-json": {"auditor", "operator", "administrator"},
    "consents": {"auditor", "administrator"},
    "identities": {"auditor", "administrator"},
    "identity": {"auditor", "administrator"},
    "consent": {"auditor", "administrator"},
}


def test_anonymous_is_sent_to_login_from_every_page(client, live_session, identity, grant):
    for name, url in pages(live_session, identity, grant).items():
        response = client.get(url)
        assert response.status_code == 302, name
        assert response["Location"].startswith(reverse("login")), name


@pytest.mark.parametrize("role", ROLES)
def test_each_role_opens_exactly_its_pages(client, role, live_session, identity, grant):
    login(client, staff_user(role))
    for name, url in pages(live_session, identity, grant).items():
        response = client.get(url)
        if role in PAGE_ACCESS[name]:
            assert response.status_code == 200, (role, name)
            if hasattr(response, "streaming_content"):
                b"".join(response.streaming_content)
        else:
            assert response.status_code == 403, (role, name)


def _actions(live_session):
    return {
        "switch-global": (reverse("dashboard:switch-global"), {"action": "disable"}),
        "switch-kiosk": (
            reverse("dashboard:switch-kiosk", args=["demo"]),
            {"action": "disable"},
        ),
        "end-session": (reverse("dashboard:end-session", args=[live_session.pk]), {}),
    }


def _nothing_changed(live_session) -> bool:
    switch = FusionSwitch.objects.filter(pk=1).first()
    live_session.refresh_from_db()
    return (
        (switch is None or switch.enabled)
        and Kiosk.objects.get(slug="demo").fusion_enabled
        and live_session.ended_at is None
    )


def test_anonymous_cannot_act(client, live_session, grant, identity_consent):
    revokes = {
        "consent-revoke": reverse("dashboard:consent-revoke", args=[grant.pk]),
        "identity-consent-revoke": reverse(
            "dashboard:identity-consent-revoke",
            args=[identity_consent.identity_id, identity_consent.pk],
        ),
        "identity-consent-record": reverse(
            "dashboard:identity-consent-record", args=[identity_consent.identity_id]
        ),
    }
    for name, url in revokes.items():
        response = client.post(url, {"reason": "test", "confirm": "yes"})
        assert response.status_code == 302, name
        assert response["Location"].startswith(reverse("login")), name
    grant.refresh_from_db()
    identity_consent.refresh_from_db()
    assert grant.withdrawn_at is None and identity_consent.revoked_at is None
    for name, (url, data) in _actions(live_session).items():
        response = client.post(url, {**data, "reason": "test", "confirm": "yes"})
        assert response.status_code == 302, name
        assert response["Location"].startswith(reverse("login")), name
    assert _nothing_changed(live_session)


@pytest.mark.parametrize("role", [None, "auditor"])
def test_auditor_and_roleless_cannot_flip_the_switch_or_end_sessions(client, role, live_session):
    login(client, staff_user(role))
    for name, (url, data) in _actions(live_session).items():
        response = client.post(url, {**data, "reason": "I should not", "confirm": "yes"})
        assert response.status_code == 403, (role, name)
    assert _nothing_changed(live_session)


def test_auditor_is_refused_by_the_switch_service_itself(live_session):
    from django.core.exceptions import PermissionDenied

    from kiosk.switch import disable_fusion

    with pytest.raises(PermissionDenied):
        disable_fusion(staff_user("auditor"), "bypassing the view")
    assert _nothing_changed(live_session)


def test_actions_refuse_get(client, live_session):
    login(client, staff_user("operator"))
    for name, (url, _data) in _actions(live_session).items():
        assert client.get(url).status_code == 405, name


@pytest.mark.parametrize("role", ["auditor", "operator", None])
def test_only_administrators_reach_django_admin(client, role):
    login(client, staff_user(role))
    response = client.get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_administrator_reaches_django_admin_for_kiosks_identities_and_users(client):
    login(client, staff_user("administrator"))
    assert client.get("/admin/").status_code == 200
    for url in ("/admin/kiosk/kiosk/", "/admin/auth/user/"):
        assert client.get(url).status_code == 200, url
    # The switch is not edited in the admin (no audit, no broadcast there).
    assert client.get("/admin/kiosk/fusionswitch/add/").status_code == 403


def test_csrf_is_enforced_on_actions(live_session):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    login(client, staff_user("operator"))
    response = client.post(
        reverse("dashboard:switch-global"),
        {"action": "disable", "reason": "no token", "confirm": "yes"},
    )
    assert response.status_code == 403
    assert _nothing_changed(live_session)


@pytest.mark.parametrize("role", ["operator", "administrator"])
def test_operators_and_administrators_flip_the_switch_and_end_sessions(
    client, role, live_session, django_capture_on_commit_callbacks
):
    login(client, staff_user(role))
    with django_capture_on_commit_callbacks(execute=True):
        for name, (url, data) in _actions(live_session).items():
            response = client.post(url, {**data, "reason": f"{role} test", "confirm": "yes"})
            assert response.status_code == 302, (role, name)
            assert not response["Location"].startswith(reverse("login")), (role, name)
    assert FusionSwitch.objects.get(pk=1).enabled is False
    assert Kiosk.objects.get(slug="demo").fusion_enabled is False
    live_session.refresh_from_db()
    assert live_session.end_reason == "operator"
