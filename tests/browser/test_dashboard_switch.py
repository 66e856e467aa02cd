"""An operator at the dashboard and a visitor at a kiosk, in two Chromium pages.

The kiosk runs with a fake camera (a moving astronaut); the operator logs in, sees its live
session (its numbers arrive over the dashboard's socket), switches face fusion off
everywhere with a reason and a confirmation; the kiosk shows "paused"; the audit search
finds the event with the operator and the reason; switching back on brings the kiosk back
without anyone touching it.
"""

import os

import pytest
from playwright.sync_api import Page, expect

from kiosk.models import Engine, Kiosk
from tests.browser.conftest import in_thread, open_enrolled_kiosk
from tests.dashboard_support import PASSWORD, code_from_secret, staff_user

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

WAIT_MS = 30_000  # generous: the machine may be loaded
REASON_OFF = "Fraud alert at branch 12 · 欺诈警报"
REASON_ON = "Alert cleared by the security desk"
# Set DASHBOARD_SCREENSHOTS=/some/dir to look at the pages (never committed).
SCREENSHOTS = os.environ.get("DASHBOARD_SCREENSHOTS", "")


def screenshot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=True)


def log_in(page: Page, base: str, username: str) -> None:
    """Password, then the second factor: a first login enrols it (the code is computed here
    from the secret the page shows, as an authenticator app would)."""
    page.goto(base + "/dashboard/")
    page.wait_for_url("**/accounts/login/**")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url("**/dashboard/second-factor/**")
    expect(page.locator("#otp-qr svg")).to_be_visible()
    page.fill("#id_token", code_from_secret(page.locator("#otp-secret").inner_text()))
    page.click("#otp-submit")
    page.wait_for_url("**/dashboard/")


def flip_global_switch(page: Page, button: str, reason: str) -> None:
    page.click(button)
    expect(page.locator("#confirm-dialog")).to_be_visible()
    # Without the confirmation the browser does not submit (and the server would refuse).
    page.fill("#confirm-reason", reason)
    page.check("#confirm-check")
    page.click("#confirm-submit")
    page.wait_for_load_state()


def test_operator_disables_and_re_enables_face_fusion(kiosk_server, browser):
    in_thread(
        Kiosk.objects.create, slug="branch-12", name="Branch 12 · Counter 3", engine=Engine.LABEL
    )
    in_thread(staff_user, "operator", "olivia")

    # The visitor at the kiosk agrees and gets live (labelled) video.
    kiosk_page = browser.new_context(viewport={"width": 1024, "height": 768}).new_page()
    open_enrolled_kiosk(kiosk_page, kiosk_server, "branch-12")
    kiosk_page.click("#agree")
    status = kiosk_page.locator("#status")
    expect(status).to_have_attribute("data-state", "live", timeout=WAIT_MS)

    # The operator logs in and sees that session live, with numbers from its worker.
    dashboard = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page_errors: list[str] = []
    dashboard.on("pageerror", lambda error: page_errors.append(str(error)))
    log_in(dashboard, kiosk_server, "olivia")
    expect(dashboard.locator("#global-switch")).to_have_class("switch on")
    expect(dashboard.locator("#live-status")).to_have_attribute(
        "data-connected", "true", timeout=WAIT_MS
    )
    row = dashboard.locator("#sessions tbody tr", has_text="Branch 12 · Counter 3")
    expect(row).to_have_count(1, timeout=WAIT_MS)
    expect(row.locator('[data-field="state"]')).to_have_attribute(
        "data-state", "live", timeout=WAIT_MS
    )
    expect(row.locator('[data-field="fps"]')).not_to_have_text("–", timeout=WAIT_MS)
    expect(row.locator('[data-field="worker"]')).not_to_be_empty()
    expect(row.locator('[data-field="engine"]')).to_have_text("label")
    # The chart draws the session's line.
    expect(dashboard.locator("#chart-session-fps polyline")).to_have_count(1, timeout=WAIT_MS)
    dashboard.wait_for_timeout(3000 if SCREENSHOTS else 0)
    screenshot(dashboard, "live")
    # A reload keeps the charts' last minutes (this tab's storage) and reconnects.
    dashboard.reload()
    expect(dashboard.locator("#chart-session-fps polyline")).to_have_count(1, timeout=WAIT_MS)
    expect(dashboard.locator("#live-status")).to_have_attribute(
        "data-connected", "true", timeout=WAIT_MS
    )

    # One click (a reason and a confirmation): face fusion off everywhere.
    flip_global_switch(dashboard, "#global-disable", REASON_OFF)
    expect(dashboard.locator("#global-switch")).to_have_class("switch off")
    expect(dashboard.locator("#global-switch")).to_contain_text(REASON_OFF)
    expect(dashboard.locator("#global-switch")).to_contain_text("olivia")

    # The kiosk shows "paused" (the neutral picture, never the camera as the digital human).
    expect(status).to_have_attribute("data-state", "paused", timeout=WAIT_MS)
    screenshot(kiosk_page, "kiosk-paused")
    screenshot(dashboard, "live-off")
    row = dashboard.locator("#sessions tbody tr", has_text="Branch 12 · Counter 3")
    expect(row.locator('[data-field="state"]')).to_have_attribute(
        "data-state", "paused", timeout=WAIT_MS
    )

    # The audit search finds the event with the operator and the reason.
    dashboard.click("nav >> text=Audit")
    dashboard.fill("input[name=actor]", "olivia")
    dashboard.fill("input[name=action]", "switch.off")
    dashboard.click("#audit-search button[type=submit]")
    results = dashboard.locator("#audit-results tbody tr")
    expect(results).to_have_count(1, timeout=WAIT_MS)
    expect(results.first).to_contain_text("user:olivia")
    expect(results.first.locator("td.reason")).to_have_text(REASON_OFF)
    screenshot(dashboard, "audit")

    # Back on: the kiosk resumes by itself.
    flip_global_switch(dashboard, "#global-enable", REASON_ON)
    expect(dashboard.locator("#global-switch")).to_have_class("switch on")
    expect(status).to_have_attribute("data-state", "live", timeout=WAIT_MS)

    # Both changes are in the trail, in order, with their reasons.
    dashboard.goto(kiosk_server + "/dashboard/audit/?actor=olivia")
    reasons = dashboard.locator("#audit-results td.reason").all_inner_texts()
    assert reasons[:2] == [REASON_ON, REASON_OFF]
    assert page_errors == []
    if SCREENSHOTS:
        dashboard.select_option("header select[name=language]", "zh-hans")
        dashboard.wait_for_load_state()
        screenshot(dashboard, "audit-zh")
