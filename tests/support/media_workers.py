"""Start real ``manage.py media_engine`` worker processes for integration tests and bench.

    with media_workers(db_settings, redis_url, count=2, max_sessions=1) as workers:
        ...  # workers[i].name, .process, .output(), .kill(), .terminate()

Each worker runs with the test database (``child_env``), the Redis channel layer at
``redis_url`` and the test-only loopback candidates. ``media_workers`` returns once every
worker has joined the control group and listens for offers, and stops them all afterwards.
"""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from tests.conftest import REPO_ROOT, child_env

READY_TIMEOUT_S = 90.0


@dataclass
class WorkerProcess:
    name: str
    process: subprocess.Popen
    lines: list[str] = field(default_factory=list)

    def output(self) -> str:
        return "\n".join(self.lines)

    def ready(self) -> bool:
        return any(f"media worker {self.name} ready" in line for line in self.lines)

    def kill(self) -> None:
        """kill -9: the worker vanishes without ending anything."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: the worker ends its sessions with a reason, then exits."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


def _pump(worker: WorkerProcess) -> None:
    assert worker.process.stdout is not None
    for line in worker.process.stdout:
        worker.lines.append(line.rstrip("\n"))


def start_worker(
    db_settings: dict, redis_url: str, name: str, *, max_sessions: int = 1, **env: str
) -> WorkerProcess:
    environment = child_env(
        db_settings,
        REDIS_URL=redis_url,
        MEDIA_ENGINE_IN_PROCESS="0",
        MEDIA_ENGINE_LOOPBACK_CANDIDATES="1",
        KIOSK_LOG_LEVEL="INFO",
        **env,
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "media_engine",
            "--max-sessions",
            str(max_sessions),
            "--name",
            name,
        ],
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    worker = WorkerProcess(name=name, process=process)
    threading.Thread(target=_pump, args=(worker,), daemon=True).start()
    return worker


def wait_ready(workers: list[WorkerProcess], timeout: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not all(w.ready() for w in workers):
        for w in workers:
            if w.process.poll() is not None:
                raise RuntimeError(f"media worker {w.name} exited:\n{w.output()}")
        if time.monotonic() > deadline:
            raise TimeoutError(
                "media workers not ready:\n" + "\n---\n".join(w.output() for w in workers)
            )
        time.sleep(0.1)


@contextlib.contextmanager
def media_workers(
    db_settings: dict, redis_url: str, *, count: int = 2, max_sessions: int = 1, **env: str
) -> Iterator[list[WorkerProcess]]:
    workers = [
        start_worker(db_settings, redis_url, f"worker-{i + 1}", max_sessions=max_sessions, **env)
        for i in range(count)
    ]
    try:
        wait_ready(workers)
        yield workers
    finally:
        for w in workers:
            if w.process.poll() is None:
                w.process.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.kill()
