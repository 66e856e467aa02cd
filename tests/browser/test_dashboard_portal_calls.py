"""The dashboard's live page follows the portal calls without a reload: a customer at a
kiosk joins the queue and the operator's calls table shows them at once; the customer ends
and the row goes (over the page's live socket, kiosk/dashboard/consumers.py)."""

import pytest
from playwright.sync_api import expect

from kiosk.models import Kiosk
from kiosk.portal import services
from tests.browser.conftest import in_thread, open_enrolled_kiosk
from tests.browser.test_dashboard_switch import WAIT_MS, log_in, screenshot
from tests.dashboard_support import staff_user

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


def test_the_calls_table_follows_a_customer_without_a_reload(kiosk_server, browser):
    in_thread(services.ensure_portal_setup)
    in_thread(Kiosk.objects.get_or_create, slug="demo", defaults={"name": "Demo kiosk"})
    in_thread(staff_user, "operator", "olivia")
    dashboard = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page_errors: list[str] = []
    dashboard.on("pageerror", lambda error: page_errors.append(str(error)))
    log_in(dashboard, kiosk_server, "olivia")
    expect(dashboard.locator("#live-status")).to_have_attribute(
        "data-connected", "true", timeout=WAIT_MS
    )
    calls = dashboard.locator("#portal-calls tbody tr[data-call]")
    expect(calls).to_have_count(0)
    dashboard.evaluate("() => { window.notReloaded = true; }")

    customer = browser.new_context(viewport={"width": 1024, "height": 768}).new_page()
    open_enrolled_kiosk(customer, kiosk_server, "demo")
    customer.goto(f"{kiosk_server}/portal/kiosk/demo/")
    customer.wait_for_function("() => window.portalCustomer && window.portalCustomer.ready")
    customer.click("#agree-en")
    customer.wait_for_selector("#screen-queue:not([hidden])", timeout=WAIT_MS)

    expect(calls).to_have_count(1, timeout=WAIT_MS)
    expect(calls.locator('[data-field="status"]')).to_have_text("Waiting in the queue")
    expect(calls.locator('[data-field="customer"]')).to_have_text("Demo kiosk")
    expect(calls.locator('[data-field="agent"]')).to_have_text("–")
    screenshot(dashboard, "portal-calls")

    customer.click("#end")
    expect(calls).to_have_count(0, timeout=WAIT_MS)
    expect(dashboard.locator("#portal-calls tbody tr.empty")).to_have_count(1)
    assert dashboard.evaluate("() => window.notReloaded === true")  # no reload did this
    assert page_errors == []
