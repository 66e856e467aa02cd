"""The audit search validates its parameters: bad dates (near year 1 or 9999), NUL and other
control characters, bad ids and damaged page links are a 400 with a message, on the page and
on both exports, answered at once; a seeded hypothesis fuzz test finds no 500 and no hang;
the kiosk filter works on SQLite (the embedded default) too."""

import base64
import os
import subprocess
import sys
import time

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from consent.audit import append_events, make_event
from kiosk.services import ensure_demo_kiosk
from tests.conftest import REPO_ROOT
from tests.dashboard_support import login, staff_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

URLS = ("dashboard:audit", "dashboard:audit-csv", "dashboard:audit-json")


@pytest.fixture
def operator_client(client):
    ensure_demo_kiosk()
    login(client, staff_user("operator", "olga"))
    append_events([make_event("user:olga", "switch.off", "kiosk:demo", details={"kiosk": "demo"})])
    return client


def fetch(client, name: str, params: dict) -> tuple[int, str]:
    """The whole answer (a streamed export is read to its end)."""
    response = client.get(reverse(name), params)
    if response.streaming:
        body = b"".join(response.streaming_content).decode()
    else:
        body = response.content.decode()
    return response.status_code, body


def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


BAD = [
    ({"since": "0001-01-01T00:00"}, "between 1970 and 9000"),
    ({"until": "9999-12-31T23:59"}, "between 1970 and 9000"),
    ({"since": "0001-01-01T00:30+14:00"}, "between 1970 and 9000"),
    ({"until": "9999-12-31T23:59-12:00"}, "between 1970 and 9000"),
    ({"since": "yesterday"}, "is not a date and time"),
    ({"kiosk": "de\x00mo"}, "contains control characters"),
    ({"actor": "olga\x00"}, "contains control characters"),
    ({"action": "\x00"}, "contains control characters"),
    ({"session": "\x00"}, "contains control characters"),
    ({"session": "12345"}, "not a session id"),
    ({"kiosk": "k" * 65}, "too long"),
    ({"actor": "a" * 5000}, "too long"),
    ({"since": "2026-02-01T00:00", "until": "2026-01-01T00:00"}, "is after"),
]


@pytest.mark.parametrize("params, message", BAD)
@pytest.mark.parametrize("name", URLS)
def test_bad_parameters_are_a_400_with_a_message(operator_client, name, params, message):
    started = time.monotonic()
    status, body = fetch(operator_client, name, params)
    assert status == 400, body[:500]
    assert message in body
    assert time.monotonic() - started < 10  # prompt, not a hang


@pytest.mark.parametrize(
    "page",
    [
        "x",
        cursor("0001-01-01T00:00:00+00:00|5"),
        cursor("9999-12-31T23:59:59+00:00|5"),
        cursor("2026-01-01T00:00:00+00:00|" + "9" * 5000),
        cursor("2026-01-01T00:00:00+00:00|-1"),
        cursor("2026-01-01T00:00:00|5"),
        "A" * 5000,
    ],
)
@pytest.mark.parametrize("direction", ["before", "after"])
def test_damaged_page_links_are_a_400(operator_client, page, direction):
    status, body = fetch(operator_client, "dashboard:audit", {direction: page})
    assert status == 400
    assert "The page link is damaged" in body or "too long" in body


def test_a_good_search_still_finds_the_kiosk(operator_client):
    status, body = fetch(operator_client, "dashboard:audit", {"kiosk": "demo"})
    assert status == 200 and "switch.off" in body


DATES = st.one_of(
    st.sampled_from(
        ["0001-01-01T00:00", "9999-12-31T23:59", "1970-01-01T00:00+14:00", "2026-01-01T00:00Z"]
    ),
    st.datetimes().map(lambda d: d.isoformat()),
    st.text(max_size=30),
)
VALUES = {
    "since": DATES,
    "until": DATES,
    "kiosk": st.text(max_size=80),
    "session": st.one_of(st.uuids().map(str), st.text(max_size=40)),
    "actor": st.text(max_size=250),
    "action": st.text(max_size=80),
    "before": st.one_of(
        st.binary(max_size=60).map(lambda b: cursor(b.decode("latin-1"))), st.text(max_size=60)
    ),
    "after": st.text(max_size=60),
}
PARAMS = st.fixed_dictionaries({}, optional=VALUES)


@pytest.mark.timeout(600)
def test_fuzzed_audit_search_never_fails_or_hangs(operator_client):
    @seed(20261201)
    @settings(
        max_examples=int(os.environ.get("AUDIT_SEARCH_FUZZ_EXAMPLES", "150")),
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(name=st.sampled_from(URLS), params=PARAMS)
    def check(name, params):
        started = time.monotonic()
        status, body = fetch(operator_client, name, params)
        assert status in (200, 400), (status, params, body[:300])
        if status == 400:
            assert body.strip(), params  # a message, not an empty answer
        assert time.monotonic() - started < 10, params

    check()
    # The server still answers a normal search afterwards.
    status, body = fetch(operator_client, "dashboard:audit", {"kiosk": "demo"})
    assert status == 200 and "switch.off" in body


SQLITE_SCRIPT = r"""
from django.test import Client
from consent.audit import append_events, make_event
from kiosk.dashboard.audit_search import parse_query, search
append_events([make_event("system:t", "switch.off", "kiosk:demo", details={"kiosk": "demo"}),
               make_event("system:t", "tick", details={"kiosk": "other"})])
page = search(parse_query({"kiosk": "demo"}))
print("FOUND", [e.action for e in page.events])
"""


def test_kiosk_filter_on_sqlite(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(PYTHONPATH=str(REPO_ROOT), KIOSK_VAR_DIR=str(tmp_path))
    env["DJANGO_SETTINGS_MODULE"] = "kiosk.settings"
    for args in (["migrate", "-v0"], ["shell", "-c", SQLITE_SCRIPT]):
        run = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stdout + run.stderr
    assert "FOUND ['switch.off']" in run.stdout
