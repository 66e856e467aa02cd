"""A visitor at the kiosk, in Chromium with a fake camera (a moving astronaut): consent,
live labelled video from the media engine, the page's own loop figure, Stop, closing."""

import json
import os
import statistics
import time

import pytest
from playwright.sync_api import Page, expect

from consent.models import KioskSession
from kiosk.models import Engine, Kiosk
from tests.browser.conftest import in_thread, open_enrolled_kiosk

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

WAIT_MS = 20_000  # generous for a loaded machine; the 2 s figure is printed, not asserted
# Set KIOSK_SCREENSHOTS=/some/dir to look at the screens (never committed).
SCREENSHOTS = os.environ.get("KIOSK_SCREENSHOTS", "")


def screenshot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"))


def live_video(page: Page) -> dict:
    return page.evaluate(
        """() => {
            const v = document.getElementById('remote');
            return {width: v.videoWidth, height: v.videoHeight,
                    decoded: window.kioskMetrics.framesDecoded,
                    quality: v.getVideoPlaybackQuality().totalVideoFrames,
                    state: window.kioskMetrics.state};
        }"""
    )


def wait_live(page: Page) -> float:
    """Seconds from now until the remote <video> shows decoded frames."""
    started = time.monotonic()
    page.wait_for_function(
        """() => {
            const v = document.getElementById('remote');
            return v.videoWidth > 0 && v.getVideoPlaybackQuality().totalVideoFrames > 0;
        }""",
        timeout=WAIT_MS,
    )
    return time.monotonic() - started


def session_rows(slug: str) -> list[KioskSession]:
    return in_thread(
        lambda: list(KioskSession.objects.filter(kiosk__slug=slug).order_by("started_at"))
    )


def add_kiosk(slug: str, name: str) -> None:
    in_thread(Kiosk.objects.create, slug=slug, name=name, engine=Engine.LABEL)


def wait_for_end(slug: str, count: int, timeout: float = 20.0) -> list[KioskSession]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = session_rows(slug)
        if len(rows) >= count and all(row.ended_at for row in rows[:count]):
            return rows
        time.sleep(0.2)
    raise AssertionError(f"sessions not ended: {[(r.end_reason, r.ended_at) for r in rows]}")


def test_visitor_agrees_sees_live_video_and_stops(kiosk_server, browser):
    add_kiosk("browser-kiosk", "Branch 12 · Counter 3")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    # What the page asks the camera for (recorded, then passed on unchanged).
    page.add_init_script(
        """(() => {
            const md = navigator.mediaDevices, ask = md.getUserMedia.bind(md);
            md.getUserMedia = (c) => { window.cameraAsked = c; return ask(c); };
        })()"""
    )

    open_enrolled_kiosk(page, kiosk_server, "browser-kiosk")  # once per device
    page.goto(kiosk_server + "/")
    screenshot(page, "list")
    page.get_by_role("link", name="Branch 12 · Counter 3").click()
    page.wait_for_url("**/kiosk/browser-kiosk/")

    # The consent screen in Simplified Chinese first, English one click away.
    expect(page.locator("#screen-consent h1:visible")).to_have_text("同意处理您的面部影像")
    expect(page.locator("#status")).to_have_attribute("data-state", "idle")
    screenshot(page, "consent-zh")
    page.get_by_role("button", name="English").click()
    expect(page.locator("#screen-consent h1:visible")).to_have_text("Consent to process your face")
    # No camera before "I agree".
    assert page.evaluate("window.kioskMetrics.state") == "idle"
    assert session_rows("browser-kiosk") == []

    page.get_by_role("button", name="I agree").click()
    seconds_to_live = wait_live(page)
    expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    first = live_video(page)
    # 1280x720 is asked for as an ideal: the fake camera (a 640x480 file) cannot give it, and
    # the call still goes live at the camera's own size.
    asked = page.evaluate("window.cameraAsked.video")
    assert asked["width"] == {"ideal": 1280} and asked["height"] == {"ideal": 720}
    assert (first["width"], first["height"]) == (640, 480)

    # Frames keep being decoded, and the page measures its loop and reports it.
    page.wait_for_function("() => window.kioskMetrics.loopMs !== null", timeout=WAIT_MS)
    loop_figures, jitter_buffer = [], []
    for _ in range(5):
        page.wait_for_timeout(1000)
        loop_figures.append(page.evaluate("window.kioskMetrics.loopMs"))
        jitter_buffer.append(page.evaluate("window.kioskMetrics.jitterBufferMs"))
    later = live_video(page)
    assert later["decoded"] > first["decoded"]
    assert later["quality"] > first["quality"]
    expect(page.locator("#loop")).to_contain_text("loop")
    samples = [s[1] for s in page.evaluate("window.kioskMetrics.loopSamples")]
    transform = page.evaluate("window.kioskMetrics.transform")
    fps = page.evaluate("window.kioskMetrics.fps")

    screenshot(page, "live")

    rows = session_rows("browser-kiosk")
    assert len(rows) == 1 and rows[0].consent_given and rows[0].consent_language == "en"
    assert rows[0].worker  # a media worker took the call

    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#status")).to_have_attribute("data-state", "stopped")
    expect(page.locator("#status")).to_contain_text("Stopped")
    screenshot(page, "stopped")
    assert page.evaluate("document.getElementById('remote').srcObject") is None
    assert wait_for_end("browser-kiosk", 1)[0].end_reason == "bye"
    # The next visitor starts from the consent screen.
    page.get_by_role("button", name="Back to start").click()
    expect(page.locator("#screen-consent")).to_be_visible()
    expect(page.locator("#status")).to_have_attribute("data-state", "idle")

    print(
        "\nkiosk page loop: "
        + json.dumps(
            {
                "seconds_agree_to_live": round(seconds_to_live, 2),
                "loop_ms_per_second": loop_figures,
                "jitter_buffer_ms_per_second": jitter_buffer,
                "loop_ms_median": round(statistics.median(samples), 1) if samples else None,
                "loop_samples": len(samples),
                "fps": fps,
                "transform": transform,
                "timeline_ms": page.evaluate("window.kioskMetrics.timeline"),
            }
        )
    )
    assert not [line for line in console if line.startswith("error")], console
    context.close()


def test_closing_the_page_ends_the_session(kiosk_server, browser):
    add_kiosk("close-kiosk", "Closing kiosk")
    context = browser.new_context()
    page = context.new_page()
    open_enrolled_kiosk(page, kiosk_server, "close-kiosk")
    page.locator("#agree").click()
    wait_live(page)
    page.close()
    row = wait_for_end("close-kiosk", 1)[0]
    assert row.end_reason == "disconnect"
    context.close()


def test_continue_without_the_digital_human_uses_no_camera(kiosk_server, browser):
    add_kiosk("plain-kiosk", "Plain kiosk")
    context = browser.new_context()
    page = context.new_page()
    open_enrolled_kiosk(page, kiosk_server, "plain-kiosk")
    page.locator("#without").click()
    expect(page.locator("#screen-without")).to_be_visible()
    expect(page.locator("#status")).to_contain_text("不使用数字人")
    assert page.evaluate("document.getElementById('remote').srcObject") is None
    rows = session_rows("plain-kiosk")
    assert len(rows) == 1 and rows[0].consent_given is False
    page.locator("#without-done").click()
    assert wait_for_end("plain-kiosk", 1)[0].end_reason in ("bye", "disconnect")
    context.close()


def test_switching_fusion_off_mid_call_shows_paused(kiosk_server, browser):
    from kiosk.models import FusionSwitch

    add_kiosk("switch-kiosk", "Switch kiosk")
    context = browser.new_context()
    page = context.new_page()
    open_enrolled_kiosk(page, kiosk_server, "switch-kiosk")
    page.get_by_role("button", name="English").click()
    page.locator("#agree").click()
    wait_live(page)
    expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    # The operator's switch (the database row is the truth; the worker re-reads it).
    in_thread(FusionSwitch.objects.update_or_create, pk=1, defaults={"enabled": False})
    expect(page.locator("#status")).to_have_attribute("data-state", "paused", timeout=WAIT_MS)
    expect(page.locator("#status")).to_contain_text("switched off")
    in_thread(FusionSwitch.objects.update_or_create, pk=1, defaults={"enabled": True})
    expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#status")).to_have_attribute("data-state", "stopped")
    context.close()


def test_an_unenrolled_device_gets_the_not_enrolled_page_and_no_socket(kiosk_server, browser):
    from tests.browser.conftest import enrolment_link

    add_kiosk("stranger-kiosk", "Stranger kiosk")
    context = browser.new_context()
    page = context.new_page()
    response = page.goto(kiosk_server + "/kiosk/stranger-kiosk/")
    assert response is not None and response.status == 403
    expect(page.locator("#not-enrolled h1")).to_contain_text("This device is not enrolled")
    assert page.locator("#agree").count() == 0
    # A script on this device that opens the socket anyway gets no hello, only the refusal.
    first = page.evaluate(
        """() => new Promise((resolve) => {
            const ws = new WebSocket(`ws://${location.host}/ws/kiosk/stranger-kiosk/`);
            ws.onmessage = (event) => resolve(JSON.parse(event.data));
            ws.onclose = (event) => resolve({closed: event.code});
        })"""
    )
    assert first["type"] == "error" and first["code"] == "not_enrolled", first
    # The administrator's link enrols this device once; used again it is refused.
    link = enrolment_link(kiosk_server, "stranger-kiosk")
    page.goto(link)
    page.wait_for_url("**/kiosk/stranger-kiosk/")
    expect(page.locator("#agree")).to_be_visible()
    other = browser.new_context().new_page()
    again = other.goto(link)
    assert again is not None and again.status == 403
    expect(other.locator("#enrol-refused")).to_be_visible()
    context.close()
