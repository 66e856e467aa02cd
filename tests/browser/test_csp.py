"""The pages run under their Content-Security-Policy in Chromium: the watcher every browser
test uses (tests/browser/conftest.py) sees no violation on the kiosk list, the login page
and the dashboard, and does see one when an inline script is slipped into a page."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import in_thread
from tests.browser.test_dashboard_switch import log_in
from tests.dashboard_support import staff_user

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


def test_pages_run_under_the_policy_and_an_inline_script_is_refused(
    kiosk_server, browser, csp_watch
):
    in_thread(staff_user, "operator", "olivia")
    page = browser.new_context().new_page()
    response = page.goto(kiosk_server + "/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    log_in(page, kiosk_server, "olivia")
    page.goto(kiosk_server + "/dashboard/audit/")
    page.select_option("header select[name=language]", "zh-hans")  # the static lang.js
    # the URL is the same before and after the reload: wait for the reloaded page's lang
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    assert csp_watch.violations == []

    # The watcher can fail: an inline script is refused and reported.
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.inlineRan = true'; document.body.appendChild(s); }"
    )
    page.wait_for_timeout(500)
    assert page.evaluate("() => window.inlineRan === undefined")
    assert any("script-src" in v for v in csp_watch.violations), csp_watch.violations
    csp_watch.violations.clear()  # seen on purpose: the fixture's final check stays clean
