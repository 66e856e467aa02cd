"""The kill switch: from the click to the last worker's last fused frame.

Two ``manage.py media_engine`` worker processes on the Redis channel layer, real aiortc kiosk
sessions on each (``tests/support/loopclient.py``: a stamped astronaut camera whose returned
frames are read back and told apart: a stamped frame is fused video, the neutral picture is
"service paused"). Each trial:

1. every session shows fused video;
2. the click: ``kiosk.switch.disable_fusion`` (what the dashboard's POST calls: the row, the
   audit event in the same transaction, the ``fusion.switch`` broadcast on commit);
3. the figure is the time from the click to the last fused frame any session received, over
   all sessions of both workers, once every session shows the paused picture;
4. re-enable, wait for fused video everywhere, wait a random 0.1–0.6 s, next trial.

The baseline runs the same trials with the broadcast switched off, so that the workers
follow only their periodic re-read of the switch (``media_engine.worker.SWITCH_POLL_S``).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kiosk REDIS_URL=redis://127.0.0.1:6379/0 \\
        python bench/killswitch.py [--trials 40] [--sessions-per-worker 2]

It works in its own database (``<name>_bench_killswitch``, created and dropped here). The last
line printed is one JSON object: p50_ms, p95_ms, p99_ms, max_ms, trials, workers, sessions,
violations (fused frames after a session had shown "paused") and the baseline's figures.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

TARGET_P99_MS = 250.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--baseline-trials", type=int, default=None)
    parser.add_argument("--sessions-per-worker", type=int, default=2)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--fps", type=float, default=30.0)
    return parser.parse_args()


def bench_database(url: str) -> tuple[str, str]:
    """(server URL without database, bench database name)."""
    base, _, name = url.rpartition("/")
    name = name.split("?")[0] or "kiosk"
    return base, f"{name}_bench_killswitch"


def psql(server: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 50), 1),
        "p95_ms": round(percentile(values, 95), 1),
        "p99_ms": round(percentile(values, 99), 1),
        "max_ms": round(max(values), 1) if values else float("nan"),
        "mean_ms": round(statistics.fmean(values), 1) if values else float("nan"),
    }


# Where the time goes (broadcast trials): from the click, the service call's whole duration
# and when the broadcast had been handed to Redis (after the commit); then from that moment
# to the last fused frame.
# From the click until every session had shown the paused picture (the other side of the
# same moment: the last fused frame may arrive before the first paused one is made).
ALL_PAUSED: list[float] = []
ALL_PAUSED_BASELINE: list[float] = []
PARTS: dict[str, list[float]] = {
    "service_call_ms": [],
    "broadcast_sent_ms": [],
    "broadcast_to_last_fused_ms": [],
}


class Watch:
    """One session's returned video: when its fused and paused frames arrived.

    It reads the returned track itself, as fast as frames come (aiortc queues decoded frames
    without bound, so a slow reader would note them late), and looks only at the luma plane
    on a coarse grid: a frame is "paused" when it is the neutral picture
    (``media_engine.paused``), anything else is fused video (the camera through the engine).
    """

    PAUSED_MAX_DIFF = 12.0
    GRID = 4

    def __init__(self, call) -> None:
        self.call = call
        self.last_fused_at = 0.0
        self.first_paused_at: float | None = None
        self.fused_after_paused = 0
        self.frames = 0
        returned = call.peer.returned
        returned._task.cancel()  # this reader replaces the test client's (slower) one
        track = next(t.receiver.track for t in call.peer.pc.getTransceivers() if t.kind == "video")
        self._task = asyncio.ensure_future(self._read(track))

    async def _read(self, track) -> None:
        from aiortc.mediastreams import MediaStreamError

        try:
            while True:
                frame = await track.recv()
                self._note(frame, time.monotonic())
        except MediaStreamError:
            pass

    def _note(self, frame, now: float) -> None:
        self.frames += 1
        plane = frame.planes[0]
        luma = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[
            : frame.height, : frame.width
        ]
        sample = luma[:: self.GRID, :: self.GRID].astype(np.int16)
        if float(np.abs(sample - paused_luma(frame.width, frame.height)).mean()) < (
            self.PAUSED_MAX_DIFF
        ):
            if self.first_paused_at is None:
                self.first_paused_at = now
        else:
            self.last_fused_at = now
            if self.first_paused_at is not None:
                self.fused_after_paused += 1

    def arm(self) -> None:
        self.first_paused_at = None
        self.fused_after_paused = 0

    @property
    def paused_now(self) -> bool:
        return self.first_paused_at is not None

    async def stop(self) -> None:
        self._task.cancel()


@functools.cache
def paused_luma(width: int, height: int) -> np.ndarray:
    """The paused picture's luma on the same grid (BT.601, as the encoder's input)."""
    import cv2

    from media_engine.paused import paused_frame

    yuv = cv2.cvtColor(paused_frame(width, height), cv2.COLOR_BGR2YUV_I420)
    return yuv[:height][:: Watch.GRID, :: Watch.GRID].astype(np.int16)


async def wait_until(predicate, limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.005)


class Operator:
    """The operator's side in a process of its own (as the dashboard's server is): it runs
    ``kiosk.switch`` when told, and reports when the click started and when the broadcast
    had been handed to Redis (``time.monotonic`` is one clock for every process)."""

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--operator",
            cwd=REPO_ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert (await self.process.stdout.readline()).strip() == b"ready"

    async def switch(self, command: str) -> dict:
        self.process.stdin.write(command.encode() + b"\n")
        await self.process.stdin.drain()
        return json.loads(await self.process.stdout.readline())

    async def stop(self) -> None:
        self.process.stdin.close()
        await self.process.wait()


def operator_process() -> None:
    """``--operator``: read "off", "off-quiet" (no broadcast: the baseline) or "on" lines."""
    import django

    django.setup()
    from django.contrib.auth.models import User

    from kiosk import switch

    operator = User.objects.get(username="bench-operator")
    operator.has_perm("dashboard.operate_switch")  # permissions cached, as in a request
    switch.announce_switch(None, None)  # the connection to Redis, as in a running server
    from media_engine.worker import freeze_startup_heap

    freeze_startup_heap()
    original = switch.announce_switch
    print("ready", flush=True)
    for line in sys.stdin:
        command = line.strip()
        announced: list[float] = []

        def announce(
            kiosk_slug, enabled=None, broadcast=command != "off-quiet", announced=announced
        ):
            sent = original(kiosk_slug, enabled) if broadcast else False
            announced.append(time.monotonic())
            return sent

        switch.announce_switch = announce
        clicked = time.monotonic()
        switch.set_fusion(operator, enabled=command == "on", reason=f"kill switch bench: {command}")
        done = time.monotonic()
        switch.announce_switch = original
        print(json.dumps({"clicked": clicked, "announced": announced[0], "done": done}), flush=True)


async def trial(operator: Operator, watches: list[Watch], *, broadcast: bool) -> tuple[float, int]:
    """One click; returns (ms from the click to the last fused frame, violations)."""
    # Every session shows fused video now.
    mark = time.monotonic()
    await wait_until(
        lambda: all(w.last_fused_at > mark for w in watches), 20.0, "fused video before the click"
    )
    for w in watches:
        w.arm()
    click = await operator.switch("off" if broadcast else "off-quiet")
    clicked = click["clicked"]
    await wait_until(lambda: all(w.paused_now for w in watches), 20.0, "every session paused")
    await asyncio.sleep(0.3)  # a fused frame still on its way would show up now
    violations = sum(w.fused_after_paused for w in watches)
    last_fused = max(w.last_fused_at for w in watches)
    took_ms = max(0.0, (last_fused - clicked) * 1000.0)
    all_paused_ms = (max(w.first_paused_at for w in watches) - clicked) * 1000.0
    (ALL_PAUSED if broadcast else ALL_PAUSED_BASELINE).append(all_paused_ms)
    if broadcast:
        PARTS["service_call_ms"].append((click["done"] - clicked) * 1000.0)
        PARTS["broadcast_sent_ms"].append((click["announced"] - clicked) * 1000.0)
        PARTS["broadcast_to_last_fused_ms"].append(
            max(0.0, (last_fused - click["announced"]) * 1000.0)
        )
    # Back on: every session shows fused video again without anyone touching it.
    await operator.switch("on")
    back = time.monotonic()
    await wait_until(
        lambda: all(w.last_fused_at > back for w in watches), 20.0, "fused video after re-enable"
    )
    await asyncio.sleep(random.uniform(0.1, 0.6))
    return took_ms, violations


async def run_trials(args, redis_url: str, db_settings: dict) -> dict:
    from channels.layers import get_channel_layer

    from media_engine.worker import freeze_startup_heap
    from tests.support.channel_call import ChannelCall
    from tests.support.loopclient import KioskPeer
    from tests.support.media_workers import media_workers

    layer = get_channel_layer()
    per_worker = args.sessions_per_worker
    with media_workers(db_settings, redis_url, count=2, max_sessions=per_worker):
        calls = []
        try:
            for n in range(2 * per_worker):
                call = ChannelCall(layer, f"bench-{n % 2 + 1}", engine="label")
                call.peer = KioskPeer(width=args.width, height=args.height, fps=args.fps)
                await call.send_offer(await call.peer.offer())
                await call.connect(within=60)
                calls.append(call)
            for call in calls:
                await call.wait_frames(10, within=60)
            by_worker: dict[str, int] = {}
            for call in calls:
                by_worker[call.answer["worker"]] = by_worker.get(call.answer["worker"], 0) + 1
            if len(by_worker) != 2:
                raise RuntimeError(f"sessions did not spread over both workers: {by_worker}")
            watches = [Watch(call) for call in calls]
            operator = Operator()
            await operator.start()
            # A full collection walking Django's and aiortc's heap stalls this process's
            # loop for hundreds of ms on a loaded machine: freeze it, as the media workers
            # do (media_engine.worker.freeze_startup_heap).
            freeze_startup_heap()
            results = {}
            for name, broadcast, count in (
                ("broadcast", True, args.trials),
                ("baseline", False, args.baseline_trials or args.trials),
            ):
                took, violations = [], 0
                for _ in range(count):
                    ms, bad = await trial(operator, watches, broadcast=broadcast)
                    took.append(ms)
                    violations += bad
                results[name] = {"values": took, "violations": violations}
                print(name, json.dumps(summary(took)), file=sys.stderr, flush=True)
            results["by_worker"] = by_worker
            await operator.stop()
            for watch in watches:
                await watch.stop()
            return results
        finally:
            for call in calls:
                await call.close()


def main() -> None:
    if sys.argv[1:] == ["--operator"]:
        operator_process()
        return
    args = parse_args()
    database_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kiosk")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    server, name = bench_database(database_url)
    psql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    psql(server, f'CREATE DATABASE "{name}"')
    os.environ.update(
        DATABASE_URL=f"{server}/{name}",
        REDIS_URL=redis_url,
        MEDIA_ENGINE_IN_PROCESS="0",
        DJANGO_SETTINGS_MODULE="kiosk.settings",
        KIOSK_EMBEDDED="1",  # the embedded default's settings on these services
        PYTHONPATH=str(REPO_ROOT),
    )
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=REPO_ROOT,
            check=True,
        )
        import django

        django.setup()
        from kiosk.dashboard.staff import create_staff_user
        from kiosk.models import Engine, Kiosk

        for n in (1, 2):
            Kiosk.objects.create(slug=f"bench-{n}", name=f"Bench {n}", engine=Engine.LABEL)
        create_staff_user("bench-operator", os.urandom(12).hex(), "operator")
        from django.conf import settings

        results = asyncio.run(run_trials(args, redis_url, settings.DATABASES["default"]))
        from django.db import connections

        connections.close_all()
    finally:
        psql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    broadcast, baseline = results["broadcast"], results["baseline"]
    figures = summary(broadcast["values"])
    base = summary(baseline["values"])
    out = {
        **figures,
        "trials": len(broadcast["values"]),
        "workers": 2,
        "sessions": sum(results["by_worker"].values()),
        "sessions_by_worker": results["by_worker"],
        "violations": broadcast["violations"] + baseline["violations"],
        "target_p99_ms": TARGET_P99_MS,
        "meets_target": figures["p99_ms"] <= TARGET_P99_MS,
        "baseline": {
            "what": "periodic re-read only (no fusion.switch broadcast)",
            **base,
            "trials": len(baseline["values"]),
        },
        "ratio_p50": round(base["p50_ms"] / figures["p50_ms"], 2) if figures["p50_ms"] else None,
        "ratio_p99": round(base["p99_ms"] / figures["p99_ms"], 2) if figures["p99_ms"] else None,
        "frame": f"{args.width}x{args.height}@{args.fps:g}",
        "all_paused_ms": {
            "p50": round(percentile(ALL_PAUSED, 50), 1),
            "p99": round(percentile(ALL_PAUSED, 99), 1),
            "baseline_p50": round(percentile(ALL_PAUSED_BASELINE, 50), 1),
            "baseline_p99": round(percentile(ALL_PAUSED_BASELINE, 99), 1),
        },
        "parts_ms": {
            k: {"p50": round(percentile(v, 50), 1), "p99": round(percentile(v, 99), 1)}
            for k, v in PARTS.items()
            if v
        },
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
