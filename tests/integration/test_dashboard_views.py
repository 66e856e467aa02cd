"""The dashboard's pages and actions end to end through Django (real PostgreSQL): the
switch from a POST, the audit search with keyset pages, its exports, bad input."""

import csv
import datetime as dt
import io
import json
import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from consent.audit import append_events, make_event
from consent.models import AuditEvent, KioskSession
from kiosk.models import FusionSwitch
from kiosk.selectors import fusion_allowed
from kiosk.services import ensure_demo_kiosk
from tests.dashboard_support import login, staff_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def operator_client(client):
    ensure_demo_kiosk()
    login(client, staff_user("operator", "olga"))
    return client


def test_global_switch_from_the_dashboard(operator_client, django_capture_on_commit_callbacks):
    url = reverse("dashboard:switch-global")
    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(
            url, {"action": "disable", "reason": "fraud alert", "confirm": "yes"}, follow=True
        )
    assert response.status_code == 200
    assert fusion_allowed() is False
    page = response.content.decode()
    assert "Face fusion is OFF everywhere" in page
    assert "fraud alert" in page
    event = AuditEvent.objects.get(action="switch.off")
    assert (event.actor, event.details["reason"]) == ("olga", "fraud alert")

    # The audit search finds it by actor and action, with the reason shown.
    page = operator_client.get(
        reverse("dashboard:audit"), {"actor": "olga", "action": "switch.off"}
    ).content.decode()
    assert "fraud alert" in page and "user:olga" in page


@pytest.mark.parametrize(
    "data, message",
    [
        ({"action": "disable", "reason": "x"}, "Please confirm the action."),
        ({"action": "disable", "reason": "   ", "confirm": "yes"}, "A reason is required."),
        ({"action": "explode", "reason": "x", "confirm": "yes"}, "Unknown action."),
    ],
)
def test_switch_post_without_reason_or_confirmation_changes_nothing(operator_client, data, message):
    response = operator_client.post(reverse("dashboard:switch-global"), data, follow=True)
    assert message in response.content.decode()
    assert fusion_allowed() is True
    assert not FusionSwitch.objects.filter(enabled=False).exists()
    assert not AuditEvent.objects.exists()


def test_kiosk_switch_from_the_dashboard(operator_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        operator_client.post(
            reverse("dashboard:switch-kiosk", args=["demo"]),
            {"action": "disable", "reason": "screen cracked", "confirm": "yes"},
        )
    assert fusion_allowed("demo") is False and fusion_allowed() is True
    assert (
        operator_client.post(
            reverse("dashboard:switch-kiosk", args=["nope"]),
            {"action": "disable", "reason": "x", "confirm": "yes"},
        ).status_code
        == 404
    )
    live = operator_client.get(reverse("dashboard:live-json")).json()
    assert {"slug": "demo", "fusion_enabled": False, "reason": "screen cracked"} in live["kiosks"]


def test_end_session_from_the_dashboard(operator_client, django_capture_on_commit_callbacks):
    session = KioskSession.objects.create(kiosk=ensure_demo_kiosk(), consent_given=True)
    live = operator_client.get(reverse("dashboard:live-json")).json()
    assert [s["session_id"] for s in live["sessions"]] == [str(session.pk)]
    with django_capture_on_commit_callbacks(execute=True):
        operator_client.post(
            reverse("dashboard:end-session", args=[session.pk]),
            {"reason": "abusive visitor", "confirm": "yes"},
        )
    session.refresh_from_db()
    assert session.end_reason == "operator"
    assert operator_client.get(reverse("dashboard:live-json")).json()["sessions"] == []


def _generate_events(n: int) -> list[AuditEvent]:
    start = timezone.now() - dt.timedelta(hours=1)
    sessions = [uuid.uuid4() for _ in range(3)]
    events = [
        make_event(
            f"user:user{i % 4}" if i % 2 else "kiosk:demo",
            ("switch.off", "session.started", "session.ended")[i % 3],
            "kiosk:demo",
            session=sessions[i % 3],
            details={"kiosk": f"k{i % 5}", "reason": f"r{i}"},
            # Some events share a time, so the keyset must break ties by seq.
            occurred_at=start + dt.timedelta(seconds=i // 3),
        )
        for i in range(n)
    ]
    append_events(events)
    return list(AuditEvent.objects.order_by("-occurred_at", "-seq"))


def _seqs(page: str) -> list[int]:
    import re

    return [int(s) for s in re.findall(r'<td class="num">(\d+)</td>', page)]


def test_keyset_pages_walk_every_event_once_both_ways(operator_client):
    expected = [e.seq for e in _generate_events(130)]
    url = reverse("dashboard:audit")
    seen, pages, response = [], [], operator_client.get(url)
    while True:
        assert response.status_code == 200
        page_seqs = _seqs(response.content.decode())
        pages.append(page_seqs)
        seen += page_seqs
        older = response.context["page"].older
        if not older:
            break
        response = operator_client.get(url, {"before": older})
    assert seen == expected
    assert [len(p) for p in pages] == [50, 50, 30]
    # And back: "newer" from the last page gives the middle page again.
    newer = response.context["page"].newer
    back = operator_client.get(url, {"after": newer})
    assert _seqs(back.content.decode()) == pages[1]


@pytest.mark.parametrize(
    "params, expect",
    [
        ({"actor": "user1"}, lambda e: e.actor == "user1"),
        ({"actor": "kiosk:demo"}, lambda e: e.actor_kind == "kiosk"),
        ({"action": "switch.off"}, lambda e: e.action == "switch.off"),
        ({"kiosk": "k2"}, lambda e: e.details.get("kiosk") == "k2"),
        (
            {"kiosk": "k2", "action": "session.ended"},
            lambda e: e.details.get("kiosk") == "k2" and e.action == "session.ended",
        ),
    ],
)
def test_filters(operator_client, params, expect):
    events = _generate_events(60)
    wanted = [e.seq for e in events if expect(e)]
    assert wanted
    response = operator_client.get(reverse("dashboard:audit"), params)
    assert _seqs(response.content.decode()) == wanted[:50]


def test_time_and_session_filters(operator_client):
    events = _generate_events(60)
    session = events[0].session_id
    response = operator_client.get(reverse("dashboard:audit"), {"session": str(session)})
    assert _seqs(response.content.decode()) == [e.seq for e in events if e.session_id == session]
    middle = events[30].occurred_at
    since = (middle - dt.timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%S")
    until = middle.strftime("%Y-%m-%dT%H:%M:%S.%f")
    response = operator_client.get(reverse("dashboard:audit"), {"since": since, "until": until})
    lo = middle.replace(microsecond=0) - dt.timedelta(seconds=2)
    assert _seqs(response.content.decode()) == [
        e.seq for e in events if lo <= e.occurred_at <= middle
    ]


@pytest.mark.parametrize(
    "params, message",
    [
        ({"since": "yesterday"}, "is not a date and time"),
        ({"session": "not-a-uuid"}, "is not a session id"),
        ({"since": "2026-02-02T00:00", "until": "2026-01-01T00:00"}, "is after"),
        ({"before": "garbage!!"}, "page link is damaged"),
        ({"actor": "a" * 201}, "too long"),
    ],
)
def test_bad_search_is_explained(operator_client, params, message):
    response = operator_client.get(reverse("dashboard:audit"), params)
    assert response.status_code == 400
    assert message in response.content.decode()


def test_exports_stream_the_whole_result_and_are_audited(
    operator_client, django_capture_on_commit_callbacks
):
    events = _generate_events(40)
    wanted = [e for e in events if e.details.get("kiosk") == "k1"]
    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.get(reverse("dashboard:audit-csv"), {"kiosk": "k1"})
        body = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [int(r["seq"]) for r in rows] == [e.seq for e in wanted]
    assert rows[0]["hash"] == wanted[0].hash
    assert json.loads(rows[0]["details"]) == wanted[0].details
    assert response["Content-Disposition"].startswith("attachment;")

    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.get(reverse("dashboard:audit-json"), {"kiosk": "k1"})
        data = json.loads(b"".join(response.streaming_content))
    assert [e["seq"] for e in data["events"]] == [e.seq for e in wanted]
    assert data["filters"] == {"kiosk": "k1"}
    exports = AuditEvent.objects.filter(action="audit.export", actor="olga")
    assert sorted(e.details["format"] for e in exports) == ["csv", "json"]
    bad = operator_client.get(reverse("dashboard:audit-json"), {"session": "x"})
    assert bad.status_code == 400


def test_audit_page_shows_the_last_verification(operator_client):
    from consent.verification import write_checkpoint

    _generate_events(5)
    page = operator_client.get(reverse("dashboard:audit")).content.decode()
    assert "No verification recorded yet." in page
    write_checkpoint()
    _generate_events(2)
    page = operator_client.get(reverse("dashboard:audit")).content.decode()
    assert "verified" in page and "events up to #5 verified and signed" in page
    assert "2 events since." in page


def test_kiosks_page_shows_installed_model_packs_with_their_licence(
    operator_client, tmp_path, monkeypatch
):
    from media_engine.engines import insightface_swap

    pack = tmp_path / "inswapper-pack"
    pack.mkdir()
    (pack / "swapper.onnx").write_bytes(b"not a real model")
    (pack / "recogniser.onnx").write_bytes(b"not a real model either")
    (pack / "pack.json").write_text(
        json.dumps(
            {
                "name": "Operator pack",
                "licence": "Non-commercial research use only (accepted by ops, 2026-11)",
                "swapper": "swapper.onnx",
                "recogniser": "recogniser.onnx",
            }
        )
    )
    broken = tmp_path / "broken-pack"
    broken.mkdir()
    (broken / "pack.json").write_text("{not json")
    monkeypatch.setattr(insightface_swap, "PACKS_DIR", tmp_path)
    page = operator_client.get(reverse("dashboard:kiosks")).content.decode()
    assert "Non-commercial research use only (accepted by ops, 2026-11)" in page
    assert "swapper.onnx, recogniser.onnx" in page
    assert "is missing or not JSON" in page
    monkeypatch.setattr(insightface_swap, "PACKS_DIR", tmp_path / "none")
    page = operator_client.get(reverse("dashboard:kiosks")).content.decode()
    assert "No operator model pack is installed." in page


def test_kiosk_filter_finds_events_by_details_and_by_target_in_order(operator_client):
    start = timezone.now() - dt.timedelta(hours=1)
    events = []
    for i in range(120):
        by_target = i % 3 == 0
        events.append(
            make_event(
                "system:media-engine",
                "session.ended",
                "kiosk:k9" if by_target else "kiosk:other",
                details={} if by_target else {"kiosk": "k9" if i % 3 == 1 else "k8"},
                occurred_at=start + dt.timedelta(seconds=i // 2),
            )
        )
    # One event names the kiosk both ways: it is listed once.
    events.append(
        make_event("system:x", "switch.off", "kiosk:k9", details={"kiosk": "k9"}, occurred_at=start)
    )
    append_events(events)
    wanted = [
        e.seq
        for e in AuditEvent.objects.order_by("-occurred_at", "-seq")
        if e.target == "kiosk:k9" or e.details.get("kiosk") == "k9"
    ]
    assert len(wanted) == 81
    url = reverse("dashboard:audit")
    seen, response = [], operator_client.get(url, {"kiosk": "k9"})
    while True:
        seen += _seqs(response.content.decode())
        older = response.context["page"].older
        if not older:
            break
        response = operator_client.get(url, {"kiosk": "k9", "before": older})
    assert seen == wanted
    body = b"".join(
        operator_client.get(reverse("dashboard:audit-csv"), {"kiosk": "k9"}).streaming_content
    )
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert [int(r["seq"]) for r in rows] == wanted
    from kiosk.dashboard.audit_search import AuditQuery, iter_results

    assert [e.seq for e in iter_results(AuditQuery(kiosk="k9"), chunk=7)] == wanted
