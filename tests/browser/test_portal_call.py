"""A portal call between two real Chromium peers (fake cameras and fake microphones made here):
the customer at a kiosk and the agent at their desk, through the service.

Each receives the other's media; every frame sampled at the customer carries the label and
none carries the agent's camera stamp (the agent's raw camera never reaches the customer);
the agent ending the call ends it on both pages; the customer withdrawing ends it too.
"""

from __future__ import annotations

import base64
import os
import wave

import cv2
import numpy as np
import pytest

from consent.models import EndReason, Identity
from kiosk.models import Kiosk
from kiosk.portal import services
from kiosk.portal.models import AgentProfile, PortalCall
from media_engine.paused import paused_frame
from tests.browser.conftest import (
    CHROMIUM,
    astronaut_frames,
    chromium_args,
    in_thread,
    open_enrolled_kiosk,
)
from tests.dashboard_support import PASSWORD, code_from_secret, staff_user
from tests.support import framestamp
from tests.support.visible_label import carries_label

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]
SCREENSHOTS = os.environ.get("KIOSK_SCREENSHOTS", "")
WAIT_MS = 60_000  # two Chromiums and the avatar pipeline on a loaded 2-core machine


def write_agent_y4m(path, width: int = 640, height: int = 480) -> None:
    """The agent's camera: the astronaut mirrored, every frame stamped with its number."""
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n".encode())
        for number, frame in enumerate(astronaut_frames(width, height)):
            frame = framestamp.stamp(np.ascontiguousarray(frame[:, ::-1]), number)
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())


def write_wav(path, frequency: float, seconds: float = 3.0, rate: int = 48000) -> None:
    t = np.arange(int(seconds * rate)) / rate
    samples = (8000 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())


def launch(playwright, y4m, wav):
    args = [
        *chromium_args(y4m),
        f"--use-file-for-fake-audio-capture={wav}",
        "--autoplay-policy=no-user-gesture-required",
    ]
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)


def make_agent() -> str:
    """An agent driving the shipped synthetic avatar; returns the username."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    services.ensure_portal_setup()
    Kiosk.objects.get_or_create(slug="demo", defaults={"name": "Demo kiosk"})
    avatar, _ = Identity.objects.get_or_create(
        asset="avatar_default",
        defaults={"name": "Default avatar", "kind": "avatar", "synthetic": True},
    )
    user = get_user_model().objects.create_user(username="agent-bo", password=PASSWORD)
    user.groups.add(Group.objects.get(name="agent"))
    AgentProfile.objects.create(user=user, display_name="Bo", engine="avatar", identity=avatar)
    return user.get_username()


def log_in_agent(page, base: str, username: str) -> None:
    """Password, then the second factor: a first login enrols TOTP (the code computed here
    from the secret the page shows, as tests/browser/test_dashboard_switch.py does)."""
    page.goto(f"{base}/portal/agent/")
    page.wait_for_url("**/accounts/login/**")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url("**/dashboard/second-factor/**")
    page.wait_for_selector("#otp-qr svg")
    page.fill("#id_token", code_from_secret(page.locator("#otp-secret").inner_text()))
    page.click("#otp-submit")
    page.wait_for_url("**/portal/agent/")


def grab(page, video_id: str) -> np.ndarray:
    """The frame a <video> shows now, as BGR (drawn at its own size)."""
    data_url = page.evaluate(
        """(id) => {
            const v = document.getElementById(id);
            const c = document.createElement('canvas');
            c.width = v.videoWidth; c.height = v.videoHeight;
            c.getContext('2d').drawImage(v, 0, 0);
            return c.toDataURL('image/png');
        }""",
        video_id,
    )
    raw = base64.b64decode(data_url.split(",", 1)[1])
    return cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)


AUDIO_IN = """async (name) => {
    const pc = window[name].pc;
    let energy = 0, packets = 0;
    (await pc.getStats()).forEach((r) => {
        if (r.type === 'inbound-rtp' && r.kind === 'audio') {
            energy += r.totalAudioEnergy || 0; packets += r.packetsReceived || 0;
        }
    });
    return {energy, packets};
}"""


SHOWING = """(id) => { const v = document.getElementById(id);
    return v.videoWidth > 0 && v.getVideoPlaybackQuality().totalVideoFrames > 5; }"""


def showing(page, video_id: str) -> None:
    try:
        page.wait_for_function(SHOWING, arg=video_id, timeout=WAIT_MS)
    except Exception:
        status = page.evaluate("() => document.getElementById('status').textContent")
        call = in_thread(last_call)
        detail = (call.status, call.end_reason, call.end_detail) if call else None
        raise AssertionError(
            f"{video_id} shows nothing; page: {status!r}; call: {detail}"
        ) from None


def start_call(customer, agent, base: str) -> None:
    customer.goto(f"{base}/portal/kiosk/demo/")
    customer.wait_for_function("() => window.portalCustomer && window.portalCustomer.ready")
    customer.click("#agree-en")
    customer.wait_for_selector("#screen-queue:not([hidden])", timeout=WAIT_MS)
    assert customer.inner_text("#position") == "1"
    agent.goto(f"{base}/portal/agent/")
    agent.wait_for_selector(".queue[data-service=accounts] button.accept", timeout=WAIT_MS)
    agent.click(".take-next[data-service=accounts]")
    showing(customer, "agent-video")
    showing(agent, "customer-video")
    showing(agent, "preview")


@pytest.fixture
def portal_site(kiosk_server):
    """daphne on its embedded default: the kiosk page's own server (tests/browser/conftest.py)."""
    return kiosk_server


@pytest.fixture
def parties(portal_site, tmp_path, csp_watch):
    kiosk_server = portal_site
    from playwright.sync_api import sync_playwright

    username = in_thread(make_agent)
    write_agent_y4m(tmp_path / "agent.y4m")
    write_wav(tmp_path / "agent.wav", 660.0)
    write_wav(tmp_path / "customer.wav", 440.0)
    from tests.browser.conftest import write_y4m

    write_y4m(tmp_path / "customer.y4m")
    with sync_playwright() as playwright:
        customer_browser = launch(playwright, tmp_path / "customer.y4m", tmp_path / "customer.wav")
        agent_browser = launch(playwright, tmp_path / "agent.y4m", tmp_path / "agent.wav")
        csp_watch.attach(customer_browser)
        csp_watch.attach(agent_browser)
        try:
            customer_page, agent_page = customer_browser.new_page(), agent_browser.new_page()
            for name, page in (("customer", customer_page), ("agent", agent_page)):
                page.on("console", lambda m, n=name: print(f"[{n}] {m.type}: {m.text}"))
            open_enrolled_kiosk(customer_page, kiosk_server, "demo")  # the kiosk's device
            log_in_agent(agent_page, kiosk_server, username)
            yield customer_page, agent_page, kiosk_server
        finally:
            customer_browser.close()
            agent_browser.close()
    assert csp_watch.violations == [], csp_watch.violations


def last_call() -> PortalCall:
    return PortalCall.objects.order_by("-joined_at").first()


def test_two_browsers_talk_and_the_customer_sees_only_the_labelled_digital_human(parties):
    customer, agent, base = parties
    start_call(customer, agent, base)
    for _ in range(8):
        seen = grab(customer, "agent-video")
        assert carries_label(seen), "every frame at the customer carries the label"
        assert framestamp.read(seen) is None, "the agent's raw camera reached the customer"
        customer.wait_for_timeout(250)
    if SCREENSHOTS:  # KIOSK_SCREENSHOTS=/some/dir: look at both pages (never committed)
        customer.screenshot(path=os.path.join(SCREENSHOTS, "portal-customer.png"))
        agent.screenshot(path=os.path.join(SCREENSHOTS, "portal-agent.png"))
    at_agent = grab(agent, "customer-video")
    assert not carries_label(at_agent), "the agent sees the customer as they are"
    customer.wait_for_timeout(2000)
    heard_by_customer = customer.evaluate(AUDIO_IN, "portalCustomer")
    heard_by_agent = agent.evaluate(AUDIO_IN, "portalAgent")
    assert heard_by_customer["packets"] > 50 and heard_by_customer["energy"] > 0
    assert heard_by_agent["packets"] > 50 and heard_by_agent["energy"] > 0

    agent.click("#end")
    customer.wait_for_selector("#screen-ended:not([hidden])", timeout=WAIT_MS)
    agent.wait_for_selector("#call[hidden]", state="attached", timeout=WAIT_MS)
    call = in_thread(last_call)
    assert call.status == "ended" and call.end_reason == EndReason.BYE


def test_withdrawing_in_the_browser_ends_the_call_on_both_pages(parties):
    customer, agent, base = parties
    start_call(customer, agent, base)
    customer.click("#withdraw")
    customer.wait_for_selector("#screen-ended:not([hidden])", timeout=WAIT_MS)
    agent.wait_for_selector("#call[hidden]", state="attached", timeout=WAIT_MS)
    call = in_thread(last_call)
    assert call.end_reason == EndReason.WITHDRAWN


def looks_paused(frame: np.ndarray) -> bool:
    """The "service paused" still (media_engine/paused.py) at the frame's size."""
    height, width = frame.shape[:2]
    picture = paused_frame(width, height).astype(np.int16)
    return float(np.abs(frame.astype(np.int16) - picture).mean()) < 12


def flip_switch(operator, enabled: bool) -> None:
    from kiosk.switch import disable_fusion, enable_fusion

    (enable_fusion if enabled else disable_fusion)(operator, "portal browser test")


def test_the_switch_pauses_the_digital_human_on_both_pages_and_the_call_goes_on(parties):
    customer, agent, base = parties
    start_call(customer, agent, base)
    operator = in_thread(staff_user, "operator", "portal-switch-operator")
    in_thread(flip_switch, operator, False)  # the one-click switch, as the dashboard flips it
    try:
        for page in (customer, agent):
            page.wait_for_function(
                "() => document.getElementById('status').dataset.state === 'paused'",
                timeout=WAIT_MS,
            )
        customer.wait_for_timeout(1500)  # the still reaches the <video>
        for _ in range(6):  # the customer sees the still: never the agent's camera, never fused
            seen = grab(customer, "agent-video")
            assert looks_paused(seen), "the customer must see the paused still"
            assert framestamp.read(seen) is None, "the agent's raw camera reached the customer"
            customer.wait_for_timeout(250)
        heard = customer.evaluate(AUDIO_IN, "portalCustomer")["packets"]
        customer.wait_for_timeout(1000)
        assert customer.evaluate(AUDIO_IN, "portalCustomer")["packets"] > heard, "the call goes on"
        assert in_thread(last_call).status != "ended"
    finally:
        in_thread(flip_switch, operator, True)
    customer.click("#end")
    customer.wait_for_selector("#screen-ended:not([hidden])", timeout=WAIT_MS)
    agent.wait_for_selector("#call[hidden]", state="attached", timeout=WAIT_MS)
    assert in_thread(last_call).end_reason == EndReason.BYE
