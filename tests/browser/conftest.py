"""Chromium (Debian's /usr/bin/chromium through Playwright) with a fake camera, and the
service as a real daphne process on its embedded default, on the test database."""

import importlib
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from django.db import connections

from tests.conftest import embedded_service_env
from tests.support.servers import running, start_daphne, wait_for_other_connections_to_close

CHROMIUM = "/usr/bin/chromium"


def in_thread(function, *args, **kwargs):
    """Run a database call in a thread of its own (Playwright's sync API keeps an event loop
    running in the test's thread, where Django refuses ORM calls), closing its connection."""

    def call():
        try:
            return function(*args, **kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result()


Y4M_FRAMES = 60


def astronaut_frames(width: int = 640, height: int = 480, count: int = Y4M_FRAMES):
    """scikit-image's astronaut, moving: a slow sway, a small rotation and zoom, looping."""
    from skimage import data

    face = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    base = cv2.resize(face, (width, height))
    for n in range(count):
        phase = 2 * np.pi * n / count
        matrix = cv2.getRotationMatrix2D(
            (width / 2, height / 2), 4.0 * np.sin(phase), 1.0 + 0.03 * np.sin(2 * phase)
        )
        matrix[0, 2] += 14.0 * np.sin(phase)
        matrix[1, 2] += 6.0 * np.cos(phase)
        yield cv2.warpAffine(base, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)


def write_y4m(path: Path, width: int = 640, height: int = 480, fps: int = 30) -> Path:
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in astronaut_frames(width, height):
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


@pytest.fixture(scope="session")
def fake_camera(tmp_path_factory) -> Path:
    return write_y4m(tmp_path_factory.mktemp("camera") / "astronaut.y4m")


def chromium_args(y4m: Path) -> list[str]:
    # Exactly DESIGN.md "Browser tests"; never a --disable-features of our own.
    return [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={y4m}",
        "--allow-loopback-in-peer-connection",
    ]


# Every page reports a Content-Security-Policy violation to its console (the browser's own
# "Refused to ..." message is printed there too); CspWatch collects both.
CSP_REPORTER = """
window.addEventListener("securitypolicyviolation", (event) => {
  console.error("CSP violation: " + event.effectiveDirective + " blocked " + event.blockedURI +
    " at " + event.sourceFile + ":" + event.lineNumber + " " + (event.sample || ""));
});
"""


class CspWatch:
    """Collects the CSP violations of every page of every context of one browser."""

    def __init__(self) -> None:
        self.violations: list[str] = []

    def watch(self, context):
        context.add_init_script(CSP_REPORTER)
        context.on("console", self._console)
        return context

    def _console(self, message) -> None:
        text = message.text
        if text.startswith("CSP violation") or "Content Security Policy" in text:
            self.violations.append(text)

    def attach(self, chromium) -> None:
        """Wrap ``new_context``/``new_page`` so that every page is watched."""
        new_context, new_page = chromium.new_context, chromium.new_page

        def watched_context(*args, **kwargs):
            return self.watch(new_context(*args, **kwargs))

        def watched_page(*args, **kwargs):
            page = new_page(*args, **kwargs)
            self.watch(page.context)
            return page

        chromium.new_context, chromium.new_page = watched_context, watched_page


@pytest.fixture
def csp_watch() -> CspWatch:
    return CspWatch()


@pytest.fixture
def browser(fake_camera, csp_watch):
    """Chromium; at the end, no page may have seen a CSP violation."""
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make browser-deps` installs Debian's Chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args(fake_camera)
        )
        csp_watch.attach(chromium)
        try:
            yield chromium
        finally:
            chromium.close()
    assert csp_watch.violations == [], csp_watch.violations


def ensure_consent_texts() -> None:
    """The data migration's texts (transactional tests before us may have flushed them)."""
    from consent.models import ConsentText

    texts = importlib.import_module("consent.migrations.0002_consent_texts_v1").TEXTS
    for purpose, language, title, body in texts:
        ConsentText.objects.get_or_create(
            purpose=purpose, language=language, version=1, defaults={"title": title, "body": body}
        )


@pytest.fixture
def kiosk_server(transactional_db, settings):
    """daphne on a free port, embedded default (in-memory layer, media engine in process)."""
    ensure_consent_texts()
    process, base = start_daphne(embedded_service_env(settings.DATABASES["default"]))
    with running([process]):
        yield base
    wait_for_other_connections_to_close(settings.DATABASES["default"])


def enrolment_link(base: str, slug: str) -> str:
    """A one-time enrolment link for kiosk ``slug``, as an administrator gets it."""
    from kiosk import devices, selectors

    enrolment = in_thread(
        lambda: devices.issue_enrolment(selectors.get_kiosk(slug), "system:tests")
    )
    return base + enrolment.path()


def open_enrolled_kiosk(page, base: str, slug: str) -> None:
    """Enrol the page's browser as kiosk ``slug`` (the link stores the device cookie and
    leads to the kiosk screen), as an administrator does once per device."""
    page.goto(enrolment_link(base, slug))
    page.wait_for_url(f"**/kiosk/{slug}/")
