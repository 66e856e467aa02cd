"""Enrolling a kiosk's device: the one-time link, the cookie, rotation, the administrators'
dashboard page and the management command (Django's test client on the test database)."""

import datetime as dt
import re

import pytest
from django.core.management import call_command
from django.utils import timezone

from consent.audit_models import AuditEvent, AuditOutbox
from kiosk import devices
from kiosk.models import Engine, Kiosk, KioskDevice, KioskEnrolment
from tests.dashboard_support import login, staff_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def kiosk():
    return Kiosk.objects.create(slug="hall", name="Hall", engine=Engine.LABEL)


def audited(action: str) -> bool:
    return (
        AuditEvent.objects.filter(action=action).exists()
        or AuditOutbox.objects.filter(action=action).exists()
    )


def test_the_kiosk_page_without_a_credential_says_not_enrolled(client, kiosk):
    page = client.get("/kiosk/hall/")
    assert page.status_code == 403
    assert b"This device is not enrolled" in page.content
    assert b'id="agree"' not in page.content
    client.cookies["kiosk_device_hall"] = "made-up"
    assert client.get("/kiosk/hall/").status_code == 403


def test_an_enrolment_link_works_once_and_stores_a_hashed_credential(client, kiosk):
    enrolment = devices.issue_enrolment(kiosk, "system:tests")
    assert audited("kiosk.enrolment_issued")
    assert not KioskEnrolment.objects.filter(code_sha256=enrolment.code).exists()
    answer = client.get(enrolment.path())
    assert answer.status_code == 302 and answer["Location"] == "/kiosk/hall/"
    morsel = answer.cookies["kiosk_device_hall"]
    assert morsel["httponly"] and morsel["samesite"] == "Strict" and not morsel["secure"]
    token = morsel.value
    device = KioskDevice.objects.get(kiosk=kiosk)
    assert device.token_sha256 == devices.sha256(token) and token not in device.token_sha256
    assert audited("kiosk.device_enrolled")
    assert client.get("/kiosk/hall/").status_code == 200
    # Used once: a second device with the same link is refused.
    again = client.__class__().get(enrolment.path())
    assert again.status_code == 403 and b"enrol-refused" in again.content
    assert KioskDevice.objects.count() == 1


def test_expired_links_and_links_of_another_kiosk_are_refused(client, kiosk):
    other = Kiosk.objects.create(slug="other", name="Other", engine=Engine.LABEL)
    late = devices.issue_enrolment(kiosk, "system:tests")
    KioskEnrolment.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert client.get(late.path()).status_code == 403
    fresh = devices.issue_enrolment(kiosk, "system:tests")
    assert client.get(f"/kiosk/{other.slug}/enrol/{fresh.code}/").status_code == 403
    assert client.get(f"/kiosk/hall/enrol/{'x' * 5000}/").status_code in (403, 404)
    assert not KioskDevice.objects.exists()


def test_the_enrolment_cookie_is_secure_behind_tls(client, kiosk, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    enrolment = devices.issue_enrolment(kiosk, "system:tests")
    answer = client.get(enrolment.path(), HTTP_X_FORWARDED_PROTO="https")
    assert answer.cookies["kiosk_device_hall"]["secure"]


def test_the_kiosk_page_rotates_an_old_credential(client, kiosk):
    enrolment = devices.issue_enrolment(kiosk, "system:tests")
    old = client.get(enrolment.path()).cookies["kiosk_device_hall"].value
    KioskDevice.objects.update(rotated_at=timezone.now() - dt.timedelta(days=31))
    page = client.get("/kiosk/hall/")
    assert page.status_code == 200
    new = page.cookies["kiosk_device_hall"].value
    assert new != old
    assert devices.authenticate("hall", old) is None
    assert devices.authenticate("hall", new) is not None
    assert audited("kiosk.device_rotated")


def test_administrators_enrol_and_revoke_from_the_dashboard(client, kiosk):
    login(client, staff_user("operator", "olga"))
    assert client.get("/dashboard/kiosks/hall/devices/").status_code == 403
    login(client, staff_user("administrator", "ada"))
    assert client.get("/dashboard/kiosks/").content.count(b"/dashboard/kiosks/hall/devices/") == 1
    page = client.post("/dashboard/kiosks/hall/devices/")
    assert page.status_code == 200 and page["Cache-Control"].startswith("max-age=0")
    link = re.search(rb"http://testserver(/kiosk/hall/enrol/[^<\s]+/)", page.content).group(1)
    device_client = client.__class__()
    token = device_client.get(link.decode()).cookies["kiosk_device_hall"].value
    device = devices.authenticate("hall", token)
    assert device is not None
    refused = client.post(f"/dashboard/kiosks/hall/devices/{device.pk}/revoke/", {"reason": ""})
    assert refused.status_code == 302 and devices.authenticate("hall", token) is not None
    client.post(f"/dashboard/kiosks/hall/devices/{device.pk}/revoke/", {"reason": "lost"})
    assert devices.authenticate("hall", token) is None
    event = AuditOutbox.objects.filter(action="kiosk.device_revoked").first() or (
        AuditEvent.objects.get(action="kiosk.device_revoked")
    )
    assert event.actor == "ada" and event.details["reason"] == "lost"
    assert device_client.get("/kiosk/hall/").status_code == 403


def test_the_management_command_prints_a_working_link(client, kiosk, capsys):
    call_command("kiosk_enrol", "hall", "--base-url", "http://127.0.0.1:8000")
    out = capsys.readouterr().out
    path = re.search(r"http://127\.0\.0\.1:8000(/kiosk/hall/enrol/\S+/)", out).group(1)
    assert client.get(path).status_code == 302
    device = KioskDevice.objects.get()
    call_command("kiosk_enrol", "hall", "--revoke", str(device.pk), "--reason", "test")
    assert KioskDevice.objects.get().revoked_at is not None
    with pytest.raises(Exception, match="no kiosk"):
        call_command("kiosk_enrol", "nowhere")
