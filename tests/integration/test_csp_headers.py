"""Browser hardening: every page carries a strict Content-Security-Policy and has no inline
script, inline event handler or inline style to need anything weaker; consent proofs and
audit exports are never stored by a browser or proxy (Cache-Control: no-store)."""

import datetime as dt
import re

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse
from django.utils import timezone

from consent import services
from consent.models import ConsentGrant, Identity
from kiosk.cookies import cookie_name
from kiosk.models import Kiosk
from kiosk.portal.models import AgentProfile
from kiosk.services import ensure_demo_kiosk
from tests.dashboard_support import PASSWORD, login, staff_user
from tests.support.enrolment import enrol

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I), "inline script"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "inline event handler"),
    (re.compile(r"<style", re.I), "style element"),
    (re.compile(r"\sstyle\s*=", re.I), "style attribute"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
]


@pytest.fixture
def site(db):
    services.ensure_shipped_texts()
    ensure_demo_kiosk()
    kiosk = Kiosk.objects.create(slug="counter-7", name="Counter 7", engine="label")
    session = services.start_kiosk_session(kiosk, consent_given=True, language="en")
    identity = Identity.objects.create(name="Ms Presenter", kind="presenter")
    now = timezone.now()
    services.record_identity_consent(
        identity,
        person_name="Li Na",
        document_reference="DOC-1",
        valid_from=now - dt.timedelta(days=1),
        valid_until=now + dt.timedelta(days=30),
        actor="system:test",
    )
    grant = ConsentGrant.objects.get(session=session)
    return {"session": session, "grant": grant, "identity": identity}


def pages(site) -> list[str]:
    return [
        reverse("kiosk-list"),
        reverse("kiosk-screen", args=["demo"]),
        reverse("dashboard:kiosk-devices", args=["counter-7"]),
        reverse("dashboard:live"),
        reverse("dashboard:kiosks"),
        reverse("dashboard:audit"),
        reverse("dashboard:consents"),
        reverse("dashboard:consent", args=[site["grant"].pk]),
        reverse("dashboard:identities"),
        reverse("dashboard:identity", args=[site["identity"].pk]),
        reverse("consent:session-proof", args=[site["session"].pk]),
        reverse("consent:person-proof") + "?ref=DOC-1",
        reverse("consent:record-of-processing"),
        reverse("admin:index"),
    ]


def assert_strict(response) -> None:
    policy = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy


def test_every_page_has_a_strict_policy_and_no_inline_code(client, site):
    login(client, staff_user("administrator", "ada"))
    client.cookies[cookie_name("demo")] = enrol("demo")  # the kiosk screen is an enrolled device's
    for url in pages(site):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_strict(response)
        html = response.content.decode()
        for pattern, what in INLINE:
            found = pattern.search(html)
            assert found is None, f"{url}: {what}: {html[found.start() - 80 : found.end() + 80]}"


def test_the_login_page_has_the_policy_too(client):
    response = client.get(reverse("login"))
    assert_strict(response)
    assert not any(p.search(response.content.decode()) for p, _ in INLINE)


def test_proofs_and_exports_are_never_stored(client, site):
    login(client, staff_user("administrator", "ada"))
    for url in [
        reverse("consent:session-proof", args=[site["session"].pk]),
        reverse("consent:session-proof-json", args=[site["session"].pk]),
        reverse("consent:person-proof-json") + "?ref=DOC-1",
        reverse("dashboard:audit-csv"),
        reverse("dashboard:audit-json"),
    ]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert "no-store" in response["Cache-Control"], url


def portal_pages() -> tuple[list[str], User]:
    """The portal's pages: the kiosk's customer, a one-time link, the agent's desk and a
    supervisor's view of a waiting call."""
    from kiosk.portal import services as portal

    portal.ensure_portal_setup()
    agent = User.objects.create_user(username="agent-csp", password=PASSWORD)
    agent.groups.add(Group.objects.get(name="agent"), Group.objects.get(name="supervisor"))
    avatar = Identity.objects.create(
        name="avatar", kind="avatar", asset="avatar_default", synthetic=True
    )
    AgentProfile.objects.create(user=agent, display_name="Ann", engine="avatar", identity=avatar)
    call = portal.join_queue(
        Kiosk.objects.get(slug="demo"),
        service="cards",
        language="en",
        text_sha256="",
        blur=False,
        customer_channel="test.customer",
    )
    return [
        reverse("portal:kiosk-customer", args=["demo"]),
        reverse("portal:home-customer", args=[portal.create_home_link(agent, "cards")]),
        reverse("portal:agent"),
        reverse("portal:supervise", args=[call.pk]),
    ], agent


def test_the_portal_pages_have_the_strict_policy_and_no_inline_code(client, site):
    urls, agent = portal_pages()
    login(client, agent)
    client.cookies[cookie_name("demo")] = enrol("demo")
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert_strict(response)
        html = response.content.decode()
        for pattern, what in INLINE:
            found = pattern.search(html)
            assert found is None, f"{url}: {what}: {html[found.start() - 80 : found.end() + 80]}"
