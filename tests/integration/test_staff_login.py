"""Staff accounts like a bank's: login throttling per username and address (django-axes,
audited), password validation where a password is set, and a second factor (TOTP) for
every role that can act, enrolled from the dashboard and asked at every login; without it
an operator or administrator reaches no dashboard page or action."""

import re
import time

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from consent import audit
from consent.models import AuditEvent
from kiosk.selectors import fusion_allowed
from kiosk.services import ensure_demo_kiosk
from tests.dashboard_support import PASSWORD, code_from_secret, staff_user, totp_code

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def password_login(client, username: str, password: str = PASSWORD, address: str = "127.0.0.1"):
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address
    )


def test_repeated_failures_lock_that_user_at_that_address_out(client, settings):
    staff_user("operator", "olga")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert password_login(client, "olga", "wrong-password").status_code == 200
    assert password_login(client, "olga", "wrong-password").status_code == 429
    # Locked out: even the right password is refused from there, for now.
    response = password_login(client, "olga")
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    # The same user from another address, and another user from there, still get in.
    assert password_login(client, "olga", address="127.0.0.2").status_code == 302
    client.logout()
    staff_user("auditor", "audrey")
    assert password_login(client, "audrey").status_code == 302
    audit.sweep_outbox()
    # The lockout, and each attempt refused while it lasts, is in the audit trail.
    events = AuditEvent.objects.filter(action="staff.locked_out")
    assert events.count() == 2
    assert {(e.target, e.details["address"]) for e in events} == {("user:olga", "127.0.0.1")}


@pytest.mark.parametrize("password", ["short1", "password123", "12345678901", "olga-olga"])
def test_staff_user_command_applies_the_password_validators(monkeypatch, password):
    from kiosk.dashboard.staff import ensure_roles

    ensure_roles()
    monkeypatch.setenv("STAFF_PASSWORD", password)
    with pytest.raises(CommandError):
        call_command("staff_user", "olga-olga", "--role", "operator")
    monkeypatch.setenv("STAFF_PASSWORD", "Counter-Desk-Lantern-42")
    call_command("staff_user", "olga-olga", "--role", "operator")


def test_an_operator_enrols_a_second_factor_from_the_dashboard(client):
    ensure_demo_kiosk()
    user = staff_user("operator", "olga")
    assert password_login(client, "olga").status_code == 302
    # With the password only: every staff page sends to the second factor, actions refused.
    response = client.get(reverse("dashboard:live"))
    assert response.status_code == 302 and reverse("dashboard:otp") in response["Location"]
    for url in (reverse("dashboard:audit"), reverse("dashboard:audit-csv"), "/admin/"):
        assert reverse("dashboard:otp") in client.get(url)["Location"], url
    assert client.get(reverse("dashboard:live-json")).status_code == 403
    off = {"action": "disable", "reason": "no second factor", "confirm": "yes"}
    assert client.post(reverse("dashboard:switch-global"), off).status_code == 403
    assert fusion_allowed() is True
    # The enrolment page shows the secret (QR code and text) until it is confirmed.
    page = client.get(reverse("dashboard:otp")).content.decode()
    secret = re.search(r'id="otp-secret">([A-Z2-7]+)<', page).group(1)
    assert "<svg" in page and "otpauth://totp/" in page
    wrong = client.post(reverse("dashboard:otp"), {"token": "000000"})
    assert wrong.status_code == 400 and "not valid" in wrong.content.decode()
    time.sleep(1.1)  # django-otp throttles a device for 1 s after one wrong code
    response = client.post(
        reverse("dashboard:otp"), {"token": code_from_secret(secret), "next": "/dashboard/"}
    )
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    assert client.get(reverse("dashboard:live")).status_code == 200
    assert client.post(reverse("dashboard:switch-global"), off).status_code == 302
    assert fusion_allowed() is False
    assert TOTPDevice.objects.get(user=user).confirmed
    audit.sweep_outbox()
    assert AuditEvent.objects.filter(action="staff.second_factor_enrolled", actor="olga").exists()

    # The next login asks for a code and never shows the secret again.
    client.logout()
    password_login(client, "olga")
    page = client.get(reverse("dashboard:otp")).content.decode()
    assert "otp-secret" not in page and secret not in page
    assert client.get(reverse("dashboard:live")).status_code == 302
    device = TOTPDevice.objects.get(user=user)
    client.post(reverse("dashboard:otp"), {"token": totp_code(device.bin_key, 1)})
    assert client.get(reverse("dashboard:live")).status_code == 200


def test_an_auditor_reads_without_a_second_factor(client):
    staff_user("auditor", "audrey")
    password_login(client, "audrey")
    assert client.get(reverse("dashboard:audit")).status_code == 200
