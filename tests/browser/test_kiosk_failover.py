"""The kiosk page in Chromium against daphne, two media workers and a private Redis: kill -9
of the worker serving the call, and the page is live again on the other by itself (the
``reoffer`` of docs/signaling.md); a daphne restart, and the page reconnects by itself."""

import time

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ensure_consent_texts, open_enrolled_kiosk
from tests.browser.test_kiosk_page import WAIT_MS, add_kiosk, live_video, session_rows, wait_live
from tests.support.kiosk_service import kiosk_service
from tests.support.redis_server import private_redis

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


@pytest.fixture
def cluster(transactional_db, settings):
    ensure_consent_texts()
    with (
        private_redis() as redis_server,
        kiosk_service(
            settings.DATABASES["default"],
            redis_server.url,
            AUDIT_MEDIA_EVENTS="0",
            DJANGO_DEBUG="1",
            # The call claim of a daphne that died is free after this long (kiosk/calls.py);
            # short here so that the visit after the restart is not refused as kiosk_busy.
            KIOSK_CALL_STALE_S="3",
        ) as service,
    ):
        yield service


def decoded(page) -> int:
    return page.evaluate("window.kioskMetrics.framesDecoded || 0")


def test_the_page_survives_a_killed_worker_and_a_daphne_restart(cluster, browser):
    add_kiosk("failover-kiosk", "Counter F")
    page = browser.new_context().new_page()
    open_enrolled_kiosk(page, cluster.base, "failover-kiosk")  # once per device
    page.get_by_role("button", name="English").click()
    page.get_by_role("button", name="I agree").click()
    wait_live(page)
    expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    (first,) = session_rows("failover-kiosk")
    serving = cluster.worker(first.worker.split(":")[0])

    serving.popen.kill()
    killed_at = time.monotonic()
    before = decoded(page)
    # live again by itself: new frames decoded from the other worker, under a new session
    page.wait_for_function(
        "(before) => (window.kioskMetrics.framesDecoded || 0) > before + 15",
        arg=before,
        timeout=WAIT_MS,
    )
    live_again_s = time.monotonic() - killed_at
    rows = session_rows("failover-kiosk")
    assert len(rows) == 2, rows
    assert rows[0].end_reason == "error" and rows[1].ended_at is None
    assert rows[1].worker.split(":")[0] != serving.name
    expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    print(f"\nbrowser failover: live again {live_again_s:.2f} s after kill -9")
    assert live_again_s < 5.0, live_again_s
    assert live_video(page)["width"] > 0

    # daphne restarts: the page says the connection closed, then reconnects by itself and
    # the next visitor can agree and be live again
    cluster.restart_daphne()
    expect(page.locator("#status")).to_have_attribute("data-state", "failed", timeout=WAIT_MS)
    page.get_by_role("button", name="Back to start").click()
    # The dead daphne's claim on the kiosk's one call goes stale after KIOSK_CALL_STALE_S
    # (3 s here, kiosk/calls.py); a visit before that is kiosk_busy by design. (A daphne
    # that restarts in under 3 s, as it now does here, met the visit before the claim
    # went stale.)
    page.wait_for_timeout(3500)
    page.get_by_role("button", name="I agree").click()
    wait_live(page)
    expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
