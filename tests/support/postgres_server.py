"""A private PostgreSQL cluster on a free loopback port, which a test may restart (the
shared server of the machine is never restarted by a test). Needs PostgreSQL's server
binaries (Debian: postgresql); as root the cluster runs as the ``postgres`` user."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.redis_server import free_port


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class PrivatePostgres:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/kiosk"

    def _run(self, *args: str) -> None:
        command = list(args)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres")
        self._run(_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")

    def start(self) -> None:
        self._run(
            _bin("pg_ctl"), "-D", str(self.data), "-l", str(self.directory / "log"), "-w",
            "-o", f"-p {self.port} -h 127.0.0.1 -k {self.directory}", "start",
        )  # fmt: skip

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def restart(self, down_s: float = 1.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def create_database(self) -> None:
        import psycopg

        with psycopg.connect(
            f"postgres://postgres@127.0.0.1:{self.port}/postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE kiosk")


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    if not _bin("initdb") or not _bin("pg_ctl"):
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    with tempfile.TemporaryDirectory(prefix="kiosk-pg-") as directory:
        server = PrivatePostgres(Path(directory))
        server.init()
        server.start()
        try:
            server.create_database()
            yield server
        finally:
            server.stop()
