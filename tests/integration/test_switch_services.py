"""The fusion switch's services on real PostgreSQL and Redis.

The row is the truth, the change is audited in the same transaction (operator and
reason), and once committed the `fusion.switch` broadcast reaches a process listening on
the control group over the Redis channel layer.
"""

import subprocess
import sys
import uuid

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from consent.models import AuditEvent, AuditOutbox, KioskSession
from kiosk.dashboard.services import end_live_session
from kiosk.models import FusionSwitch, Kiosk
from kiosk.selectors import fusion_allowed
from kiosk.services import ensure_demo_kiosk
from kiosk.switch import disable_fusion, enable_fusion
from tests.conftest import REPO_ROOT, child_env
from tests.dashboard_support import staff_user
from tests.integration.conftest import read_message

pytestmark = [pytest.mark.integration]


@pytest.mark.django_db
def test_disable_globally_is_stored_audited_and_broadcast(
    redis_layer, control_listener, django_capture_on_commit_callbacks
):
    operator = staff_user("operator", "olivia")
    with django_capture_on_commit_callbacks(execute=True):
        change = disable_fusion(operator, "  suspected misuse at counter 3 ")
    assert change.enabled is False and change.was_enabled is True
    switch = FusionSwitch.objects.get(pk=1)
    assert (switch.enabled, switch.reason, switch.changed_by) == (
        False,
        "suspected misuse at counter 3",
        "olivia",
    )
    assert fusion_allowed() is False
    assert fusion_allowed("demo") is False
    assert read_message(control_listener) == {
        "type": "fusion.switch",
        "kiosk": None,
        "enabled": False,
    }
    event = AuditEvent.objects.get(action="switch.off")
    assert (event.actor_kind, event.actor, event.target) == ("user", "olivia", "switch:global")
    assert event.details["reason"] == "suspected misuse at counter 3"
    assert event.details["was_enabled"] is True

    with django_capture_on_commit_callbacks(execute=True):
        enable_fusion(operator, "cleared")
    assert fusion_allowed("demo") is True
    assert read_message(control_listener) == {
        "type": "fusion.switch",
        "kiosk": None,
        "enabled": True,
    }
    assert AuditEvent.objects.filter(action="switch.on", details__reason="cleared").exists()


@pytest.mark.django_db
def test_disable_one_kiosk(redis_layer, control_listener, django_capture_on_commit_callbacks):
    demo = ensure_demo_kiosk()
    other = Kiosk.objects.create(slug="hall-2", name="Hall 2")
    with django_capture_on_commit_callbacks(execute=True):
        disable_fusion(staff_user("operator"), "camera fault", kiosk=demo)
    assert fusion_allowed("demo") is False
    assert fusion_allowed(other.slug) is True
    assert fusion_allowed() is True
    assert Kiosk.objects.get(slug="demo").fusion_reason == "camera fault"
    assert read_message(control_listener) == {
        "type": "fusion.switch",
        "kiosk": "demo",
        "enabled": False,
    }
    event = AuditEvent.objects.get(action="switch.off")
    assert event.target == "kiosk:demo" and event.details["kiosk"] == "demo"


@pytest.mark.django_db
@pytest.mark.parametrize("reason", ["", "   ", "x" * 501, None])
def test_bad_reason_is_refused_and_changes_nothing(reason, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(ValidationError):
            disable_fusion(staff_user("operator"), reason)
    assert callbacks == []
    assert fusion_allowed("demo") is True
    assert not FusionSwitch.objects.filter(enabled=False).exists()
    assert not AuditOutbox.objects.exists() and not AuditEvent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["auditor", None])
def test_only_operators_switch(role, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(PermissionDenied):
            disable_fusion(staff_user(role), "not mine to do")
    assert callbacks == []
    assert fusion_allowed() is True
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_a_failed_transaction_leaves_neither_change_nor_event(django_capture_on_commit_callbacks):
    operator = staff_user("operator")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                disable_fusion(operator, "part of a larger change that fails")
                raise RuntimeError("the larger change failed")
    assert callbacks == []
    assert fusion_allowed() is True
    assert not AuditOutbox.objects.exists() and not AuditEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_state_survives_a_restart(settings):
    """A fresh process (a restarted worker) reads the switch from the database."""
    disable_fusion(staff_user("operator"), "overnight")
    probe = (
        "import django; django.setup();"
        "from kiosk.selectors import fusion_allowed; print(fusion_allowed('demo'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO_ROOT,
        env=child_env(settings.DATABASES["default"], DJANGO_SETTINGS_MODULE="kiosk.settings"),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.django_db
def test_operator_ends_a_session(redis_layer, control_listener, django_capture_on_commit_callbacks):
    session = KioskSession.objects.create(kiosk=ensure_demo_kiosk(), consent_given=True)
    with django_capture_on_commit_callbacks(execute=True):
        end_live_session(staff_user("operator", "oscar"), session.pk, "visitor asked")
    session.refresh_from_db()
    assert session.end_reason == "operator" and session.end_detail == "visitor asked"
    assert read_message(control_listener) == {
        "type": "sessions.end",
        "session_id": str(session.pk),
        "reason": "operator",
        "detail": "visitor asked",
    }
    event = AuditEvent.objects.get(action="session.end")
    assert event.session_id == session.pk and event.actor == "oscar"
    assert event.details["reason"] == "visitor asked"
    with pytest.raises(ValidationError):
        end_live_session(staff_user("administrator"), session.pk, "again")
    with pytest.raises(ValidationError):
        end_live_session(staff_user("operator", "o2"), uuid.uuid4(), "unknown")
    with pytest.raises(PermissionDenied):
        end_live_session(staff_user("auditor"), session.pk, "not allowed")
