"""Soak: one call for ``--minutes`` (30 by default) while 1,000 kiosk sockets connect and
disconnect through daphne and Redis; nothing may grow.

daphne, a media worker and a private Redis run as real processes (bench/site.py). One aiortc
kiosk holds a call the whole time. Meanwhile kiosk sockets open, read ``hello``, half of them
give consent (a session row, the consumer's timers) and close, ``--sockets`` of them in
waves spread over the run. Measured after a warm-up wave and at the end:

- resident memory of daphne and of the media worker (drift must stay under 5 %);
- their open file descriptors (sockets) and threads;
- daphne's asyncio tasks (``kiosk_asyncio_tasks`` on its ``/metrics``);
- the channel layer's groups and their members in Redis, and its channel keys (the
  cancelled-receive case of channels-redis would leave them behind).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kiosk python bench/soak.py [--minutes 30]

Last line: JSON with the figures, the drifts and ``holds``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.site import LightReader, bench_site, cheap_camera, proc_rss_mb
from tests.support.procfds import fd_kinds

MAX_RSS_DRIFT = 0.05
TOKEN = "soak-metrics-token"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--waves", type=int, default=10)
    parser.add_argument("--parallel", type=int, default=20)
    return parser.parse_args()


def proc_counts(pid: int) -> dict:
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    threads = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("Threads:")
    )
    return {
        "rss_mb": round(proc_rss_mb(pid), 1),
        "fds": fds,
        "fd_kinds": fd_kinds(pid),
        "threads": threads,
    }


def daphne_tasks(base: str) -> int | None:
    request = urllib.request.Request(
        base + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("kiosk_asyncio_tasks "):
                return int(float(line.split()[1]))
    return None


def redis_state(url: str) -> dict:
    import redis

    client = redis.Redis.from_url(url)
    groups = [k for k in client.scan_iter("asgi:group:*")]
    members = {k.decode(): client.zcard(k) for k in groups}
    channels = sum(1 for _ in client.scan_iter("asgi:*")) - len(groups)
    return {"groups": len(groups), "group_members": members, "channel_keys": channels}


async def churn_one(base: str, consent: bool, token: str) -> None:
    from tests.support.kioskclient import SignalingClient

    async with SignalingClient.connect(base, "soak-churn", token) as client:
        if consent:
            await client.consent()


async def churn(base: str, count: int, parallel: int, token: str) -> int:
    failures = 0
    gate = asyncio.Semaphore(parallel)

    async def one(n: int) -> None:
        nonlocal failures
        async with gate:
            try:
                await churn_one(base, n % 2 == 0, token)
            except Exception:
                failures += 1

    await asyncio.gather(*(one(n) for n in range(count)))
    return failures


def snapshot(site, pids: dict) -> dict:
    return {
        **{name: proc_counts(pid) for name, pid in pids.items()},
        "daphne_asyncio_tasks": daphne_tasks(site.base),
        "redis": redis_state(site.env["REDIS_URL"]),
    }


async def soak(site, args) -> dict:
    pids = {"daphne": site.processes[0].popen.pid, "worker": site.worker_pids()[0]}
    visit = await site.visit("soak-call")
    cheap_camera(visit.peer)
    await asyncio.wait_for(visit.peer.track_arrived.wait(), 30)
    reader = LightReader(visit.peer)
    per_wave = max(1, args.sockets // args.waves)
    wave_s = args.minutes * 60.0 / (args.waves + 1)
    from tests.support.enrolment import enrol_async

    token = await enrol_async("soak-churn")  # one enrolled device opens every churn socket
    failures = await churn(site.base, per_wave, args.parallel, token)  # warm-up wave
    await asyncio.sleep(3.0)
    start = await asyncio.to_thread(snapshot, site, pids)
    reader.reset()
    done = per_wave
    for _ in range(args.waves - 1):
        began = time.monotonic()
        failures += await churn(site.base, per_wave, args.parallel, token)
        done += per_wave
        await asyncio.sleep(max(0.0, wave_s - (time.monotonic() - began)))
    await asyncio.sleep(5.0)  # expiries and the consumers' tear-down
    end = await asyncio.to_thread(snapshot, site, pids)
    fps = reader.fps()
    reader.stop()
    await visit.close()
    return {"start": start, "end": end, "sockets": done, "failures": failures, "call_fps": fps}


def drift(start: dict, end: dict) -> dict:
    out = {}
    for name in ("daphne", "worker"):
        out[f"{name}_rss"] = round(
            (end[name]["rss_mb"] - start[name]["rss_mb"]) / start[name]["rss_mb"], 3
        )
        out[f"{name}_fds"] = end[name]["fds"] - start[name]["fds"]
        out[f"{name}_threads"] = end[name]["threads"] - start[name]["threads"]
    if start["daphne_asyncio_tasks"] is not None and end["daphne_asyncio_tasks"] is not None:
        out["daphne_asyncio_tasks"] = end["daphne_asyncio_tasks"] - start["daphne_asyncio_tasks"]
    out["redis_groups"] = end["redis"]["groups"] - start["redis"]["groups"]
    out["redis_group_members"] = sum(end["redis"]["group_members"].values()) - sum(
        start["redis"]["group_members"].values()
    )
    out["redis_channel_keys"] = end["redis"]["channel_keys"] - start["redis"]["channel_keys"]
    return out


def main() -> None:
    args = parse_args()
    os.environ["METRICS_TOKEN"] = TOKEN
    kiosks = [("soak-call", "label"), ("soak-churn", "label")]
    # The churn is one device opening sockets far faster than a kiosk does: the signaling
    # rate limits (kiosk/limits.py) are lifted for it, the soak measures leaks, not limits.
    unlimited = {
        name: [10**6, 60]
        for name in ("connect_kiosk", "connect_address", "consent_kiosk", "consent_address")
    }
    site_env = {"KIOSK_RATE_LIMITS": json.dumps(unlimited)}
    with bench_site("soak", kiosks=kiosks, workers=1, site_env=site_env) as site:
        result = asyncio.run(soak(site, args))
    d = drift(result["start"], result["end"])
    holds = (
        d["daphne_rss"] < MAX_RSS_DRIFT
        and d["worker_rss"] < MAX_RSS_DRIFT
        and d["daphne_fds"] <= 2
        and d["worker_fds"] <= 2
        and d.get("daphne_asyncio_tasks", 0) <= 2
        and d["redis_groups"] <= 0
        and d["redis_group_members"] <= 0
        and result["failures"] == 0
    )
    print(
        json.dumps(
            {
                "minutes": args.minutes,
                "sockets": result["sockets"],
                "socket_failures": result["failures"],
                "call_fps": round(result["call_fps"], 1),
                "drift": d,
                "start": result["start"],
                "end": result["end"],
                "max_rss_drift": MAX_RSS_DRIFT,
                "holds": holds,
                "load_avg_1m": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
