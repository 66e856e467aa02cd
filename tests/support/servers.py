"""Real server processes for the integration and browser tests: daphne and media workers.

Each is started as ``[sys.executable, ...]`` from the checkout's root with the environment of
``tests.conftest.child_env`` (the test database), on a free port, and is always stopped (and
its output shown when a test fails) by the context managers here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
START_TIMEOUT_S = 60.0  # generous: the machine may be loaded


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Process:
    """A child process whose output goes to a temporary file (read it with ``output()``)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.log = tempfile.NamedTemporaryFile(prefix=f"{name}-", suffix=".log", delete=False)
        self.popen = subprocess.Popen(
            args,
            cwd=REPO_ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self.log.close()

    def cleanup(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.log.name)


def wait_until(check, what: str, process: Process, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError(
                f"{process.name} exited while waiting for {what}:\n{process.output()}"
            )
        if check():
            return
        time.sleep(0.2)
    raise TimeoutError(f"{process.name}: no {what} within {timeout:g} s:\n{process.output()}")


def _answers_http(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status < 500
    except OSError:
        return False


@contextlib.contextmanager
def running(processes: list[Process]) -> Iterator[list[Process]]:
    """Stop every process at the end; print their output when the block failed."""
    try:
        yield processes
    except BaseException:
        for process in processes:
            process.stop()
            sys.stderr.write(f"\n----- {process.name} output -----\n{process.output()[-6000:]}\n")
        raise
    finally:
        for process in processes:
            process.stop()
            process.cleanup()


def explicit_mode(env: dict[str, str]) -> dict[str, str]:
    """The settings refuse to start with DATABASE_URL or REDIS_URL and no KIOSK_EMBEDDED:
    test servers run the embedded default's settings on the test's services."""
    return {"KIOSK_EMBEDDED": "1", **env}


def start_daphne(env: dict[str, str]) -> tuple[Process, str]:
    env = explicit_mode(env)
    port = free_port()
    process = Process(
        f"daphne-{port}",
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "kiosk.asgi:application",
        ],
        env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers_http(base + "/"), "HTTP answer", process)
    except BaseException:
        process.stop()
        raise
    return process, base


def start_media_worker(env: dict[str, str], name: str) -> Process:
    env = explicit_mode(env)
    process = Process(name, [sys.executable, "manage.py", "media_engine", "--name", name], env)
    try:
        wait_until(lambda: "starting" in process.output(), "start line", process)
    except BaseException:
        process.stop()
        raise
    return process


def wait_for_other_connections_to_close(db_settings: dict, timeout: float = 10.0) -> None:
    """After a child process stopped, PostgreSQL may still hold its session for a moment;
    wait so that the test database can be dropped at the end of the run."""
    if not db_settings["ENGINE"].endswith("postgresql"):
        return
    from django.db import connection

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                [db_settings["NAME"]],
            )
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.2)
