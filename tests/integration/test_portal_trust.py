"""The portal meets the kiosk's trust rules: the customer side at a kiosk is for the kiosk's
enrolled device (the same admission, rate limits and candidate screening as the kiosk's own
socket), a one-time link is rate-limited, and agents and supervisors need their second factor.
"""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from kiosk import devices
from kiosk.cookies import cookie_name
from kiosk.models import Kiosk
from kiosk.portal import services
from kiosk.portal.consumers import kiosk_allowed, link_allowed, screened_offer, staff_allowed
from kiosk.portal.protocol import PortalProtocolError
from kiosk.signaling import MAX_CANDIDATES
from tests.dashboard_support import PASSWORD, login
from tests.support.enrolment import enrol

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def kiosk():
    services.ensure_portal_setup()
    return Kiosk.objects.get_or_create(slug="demo", defaults={"name": "Demo"})[0]


def scope(slug: str = "demo", token: str | None = None, address: str = "127.0.0.1") -> dict:
    headers = [(b"cookie", f"{cookie_name(slug)}={token}".encode())] if token else []
    return {"headers": headers, "client": (address, 50000)}


def test_the_enrolment_cookie_reaches_the_portal_page_and_nothing_else_opens_it(kiosk):
    client = Client()
    assert client.get(reverse("portal:kiosk-customer", args=["demo"])).status_code == 403
    enrolment = devices.issue_enrolment(kiosk, "system:tests")
    response = client.get(reverse("kiosk-enrol", args=["demo", enrolment.code]))
    path = response.cookies[cookie_name("demo")]["path"]
    assert "/portal/kiosk/demo/".startswith(path) and "/ws/kiosk/demo/portal/".startswith(path)
    assert client.get(reverse("portal:kiosk-customer", args=["demo"])).status_code == 200
    client.cookies[cookie_name("demo")] = "made-up-token"
    assert client.get(reverse("portal:kiosk-customer", args=["demo"])).status_code == 403


def test_the_customer_socket_at_a_kiosk_uses_the_kiosk_admission(kiosk):
    assert kiosk_allowed(scope(), "demo").error == "not_enrolled"
    assert kiosk_allowed(scope(token="made-up"), "demo").error == "not_enrolled"
    assert kiosk_allowed(scope(), "nowhere").error == "unknown_kiosk"
    admitted = kiosk_allowed(scope(token=enrol("demo")), "demo")
    assert (admitted.error, admitted.kiosk, admitted.device_id is not None) == ("", kiosk, True)


def test_the_customer_socket_at_a_kiosk_is_rate_limited(kiosk, settings):
    settings.KIOSK_RATE_LIMITS = {**settings.KIOSK_RATE_LIMITS, "connect_address": [2, 3600]}
    token = enrol("demo")
    errors = [kiosk_allowed(scope(token=token, address="127.0.0.61"), "demo").error for _ in "abc"]
    assert errors == ["", "", "rate_limited"]


def test_a_one_time_link_is_rate_limited_by_address(kiosk, settings):
    settings.KIOSK_RATE_LIMITS = {**settings.KIOSK_RATE_LIMITS, "connect_address": [3, 3600]}
    guesses = [link_allowed(scope(address="127.0.0.62"), f"guess-{n}") for n in range(5)]
    assert guesses == [True, True, True, False, False]
    client = Client(REMOTE_ADDR="127.0.0.62")
    assert client.get(reverse("portal:home-customer", args=["guess-x"])).status_code == 429


def test_offers_go_through_the_kiosk_candidate_screening(settings):
    candidate = "a=candidate:1 1 udp 2122260223 127.0.0.1 {port} typ host\r\n"
    offer = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    settings.KIOSK_NETWORKS = []  # loopback is outside "any ordinary unicast address"
    assert "127.0.0.1 40000" not in screened_offer(offer + candidate.format(port=40000))
    settings.KIOSK_NETWORKS = ["127.0.0.0/8"]
    assert "127.0.0.1 40000" in screened_offer(offer + candidate.format(port=40000))
    too_many = offer + "".join(candidate.format(port=40000 + n) for n in range(MAX_CANDIDATES + 1))
    with pytest.raises(PortalProtocolError) as refused:
        screened_offer(too_many)
    assert refused.value.code == "too_many_candidates"
    with pytest.raises(PortalProtocolError) as unreadable:
        screened_offer(offer + "a=candidate:nonsense\r\n")
    assert unreadable.value.code == "bad_sdp"


def staff(role: str):
    services.ensure_portal_setup()
    user = get_user_model().objects.create_user(username=f"{role}-x", password=PASSWORD)
    user.groups.add(Group.objects.get(name=role))
    return get_user_model().objects.get(pk=user.pk)


@pytest.mark.parametrize(
    ("role", "page", "permission"),
    [
        ("agent", "portal:agent", "portal.take_calls"),
        ("supervisor", None, "portal.supervise_calls"),
    ],
)
def test_agents_and_supervisors_need_their_second_factor(kiosk, role, page, permission):
    user = staff(role)
    client = Client()
    client.force_login(user)  # the password only
    session = client.session
    assert not staff_allowed({"session": session}, user, permission)
    if page:
        response = client.get(reverse(page))
        assert response.status_code == 302 and reverse("dashboard:otp") in response["Location"]
    login(client, user)  # with the second factor
    assert staff_allowed({"session": client.session}, user, permission)
    if page:
        assert client.get(reverse(page)).status_code == 200
    assert not staff_allowed({"session": client.session}, staff("operator"), permission)
