"""Enrol a kiosk's device the way an administrator would (kiosk/devices.py), for tests and
benchmarks: a one-time enrolment code is issued and redeemed; the device token comes back.

    token = enrol("lobby")                      # in a process with Django set up
    headers = cookie_headers("lobby", token)    # for a WebSocket handshake
    token = enrol_with_manage(env, "bench")     # a service with its own database
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from channels.db import database_sync_to_async

from kiosk.cookies import cookie_name

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
TEST_ACTOR = "system:tests"


def enrol(slug: str) -> str:
    """A device credential (the cookie's token) for kiosk ``slug``."""
    from kiosk import devices, selectors

    kiosk = selectors.get_kiosk(slug)
    if kiosk is None:
        raise LookupError(f"no kiosk {slug!r} to enrol")
    enrolment = devices.issue_enrolment(kiosk, TEST_ACTOR)
    _, token = devices.redeem_enrolment(slug, enrolment.code, "tests")
    return token


async def enrol_async(slug: str) -> str:
    return await database_sync_to_async(enrol)(slug)


def cookie(slug: str, token: str) -> str:
    return f"{cookie_name(slug)}={token}"


def cookie_headers(slug: str, token: str | None) -> dict[str, str]:
    return {"Cookie": cookie(slug, token)} if token else {}


def enrol_with_manage(env: dict[str, str], slug: str) -> str:
    """Enrol through ``manage.py shell`` with ``env`` (a service's own database)."""
    done = subprocess.run(
        [sys.executable, "-c", _MANAGE_CALL, slug],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    for line in done.stdout.splitlines():
        if line.startswith("TOKEN "):
            return line.split(" ", 1)[1]
    raise RuntimeError(f"no token from the enrolment:\n{done.stdout}\n{done.stderr}")


_MANAGE_CALL = (
    "import os, sys, django; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'kiosk.settings');"
    " django.setup(); from tests.support.enrolment import enrol; print('TOKEN', enrol(sys.argv[1]))"
)
