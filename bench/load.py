"""How many concurrent sessions one media worker holds: N real sessions at 640×480, 30 fps,
through signaling (daphne, Redis, ``manage.py media_engine``), with the ``avatar`` engine.
``--workers W`` starts W worker processes instead (as a host runs several ``manage.py
media_engine`` when one process is bound by Python's lock), each taking at most its share of
the largest N; their CPU, memory and threads are then summed.

For each N (``--sessions 1,2,3,4``): N aiortc kiosks connect through the WebSocket, warm up,
then for ``--seconds`` the bench measures per session the delivered fps and the round trip
of every returned frame it can match to its camera frame (by the RTP timestamp the engine
keeps), and for the worker process its CPU and resident memory per session, and for this
process (the kiosks) its CPU share. N holds when the round-trip p95 ≤ 100 ms and every
session gets ≥ 28 fps. The baseline in the same run: one session with the ``label`` engine
(no perception, no rendering).

The kiosks are made cheap (``bench/site.py``): the camera's frames are drawn and VP8-encoded
once, and the packets are cycled (aiortc's sender packs them without encoding); the returned
video is not decoded at all (``TimestampOnlyDecoder``: the RTP timestamp, which the engine
keeps, is all the round trip needs; keyframe headers are read to check the size that comes
back). The kiosks' CPU (this process) is reported beside the figures. The worker is run
with MEDIA_ENGINE_MAX_LOAD=64 (admission off) so that overload is measured, and each run
notes what admission would have said (the heartbeat's ``accepting``).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kiosk python bench/load.py \\
        [--sessions 1,2,3,4,6] [--seconds 15] [--workers 1]

The last line is one JSON object: max_sessions, runs (one per N), baseline, load_avg.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.site import (
    RETURNED_KEYFRAMES,
    bench_site,
    percentile,
    proc_cpu_s,
    proc_rss_mb,
    skip_decoding,
    thread_cpu_s,
)
from media_engine.capacity import admits

TARGET_P95_MS = 100.0
DEFAULT_MAX_LOAD = 0.85  # media_engine.capacity.max_load's default
TARGET_FPS = 28.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", default="1,2,3,4")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=6.0)
    parser.add_argument("--engine", default="avatar")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="media worker processes (default 1); each takes at most its share of the "
        "largest N, so the sessions spread over them",
    )
    return parser.parse_args()


async def heartbeats(redis_url: str) -> list[dict]:
    import redis.asyncio as aioredis

    from media_engine.capacity import Registry

    registry = Registry(aioredis.Redis.from_url(redis_url))
    try:
        return await registry.workers()
    finally:
        await registry.close()


def workers_cpu_s(pids: list[int]) -> tuple[float, dict[tuple[int, int], float]]:
    """CPU seconds of all the workers together, and of each (worker, thread)."""
    threads = {(pid, tid): cpu for pid in pids for tid, cpu in thread_cpu_s(pid).items()}
    return sum(proc_cpu_s(pid) for pid in pids), threads


async def run_n(site, n: int, slug: str, args) -> dict:
    visits = []
    try:
        for i in range(n):
            # one live call per kiosk (kiosk/calls.py)
            visits.append(await site.visit(f"{slug}-{i}", cheap=True))
        readers = []
        for visit in visits:
            await asyncio.wait_for(visit.peer.track_arrived.wait(), 30)
            readers.append(visit.peer.light)
        await asyncio.sleep(args.warmup)
        for reader in readers:
            reader.reset()
        RETURNED_KEYFRAMES.clear()
        pids = site.worker_pids()
        cpu0, threads0 = workers_cpu_s(pids)
        own0, wall0 = time.process_time(), time.monotonic()
        await asyncio.sleep(args.seconds)
        wall = time.monotonic() - wall0
        cpu1, threads1 = workers_cpu_s(pids)
        threads = {key: (cpu - threads0.get(key, 0.0)) / wall for key, cpu in threads1.items()}
        worker_cpu = (cpu1 - cpu0) / wall
        loops = [c for (pid, tid), c in threads.items() if tid == pid]
        others = [c for (pid, tid), c in threads.items() if tid != pid]
        clients_cpu = (time.process_time() - own0) / wall
        fps = [r.fps() for r in readers]
        trips = [ms for r in readers for ms in r.round_trips_ms]
        for reader in readers:
            reader.stop()
        beats = await heartbeats(site.env["REDIS_URL"])
        load = max([float(b.get("load") or 0.0) for b in beats] or [0.0])
        run = {
            "sessions": n,
            "workers": len(pids),
            "sessions_per_worker": sorted(int(b.get("sessions") or 0) for b in beats),
            "fps_min": round(min(fps), 1),
            "fps_median": round(statistics.median(fps), 1),
            "rtt_p50_ms": percentile(trips, 50),
            "rtt_p95_ms": percentile(trips, 95),
            "matched_frames": len(trips),
            "worker_cpu_cores": round(worker_cpu, 2),
            "worker_cpu_per_session": round(worker_cpu / n, 3),
            "worker_rss_mb": round(sum(proc_rss_mb(pid) for pid in pids), 1),
            # the busiest event loop's thread (RTP, SRTP, packetizing, asyncio) and the
            # busiest other thread (all workers: CPU, memory and threads summed)
            "worker_loop_thread_cores": round(max(loops or [0.0]), 2),
            "worker_busiest_other_thread_cores": round(max(others or [0.0]), 2),
            "worker_threads": len(threads),
            "worker_cpu_ms_per_frame": round(1000 * worker_cpu / max(1e-9, sum(fps)), 1),
            "clients_cpu_cores": round(clients_cpu, 2),
            "clients_cpu_per_session": round(clients_cpu / n, 3),
            "clients_cpu_share": round(clients_cpu / max(1e-9, clients_cpu + worker_cpu), 2),
            "admission_accepting": any(b.get("accepting") for b in beats),
            "measured_load": round(load, 3),  # the busiest worker's
            # what the default MEDIA_ENGINE_MAX_LOAD would have said about one more session
            # (on the busiest worker)
            "default_admission_would_accept": admits(
                sessions=-(-n // len(pids)),
                max_sessions=64,
                load=load,
                limit=DEFAULT_MAX_LOAD,
                draining=False,
            ),
            "returned_keyframes": {f"{w}x{h}": k for (w, h), k in RETURNED_KEYFRAMES.items()},
        }
        run["holds"] = bool(
            run["rtt_p95_ms"] is not None
            and run["rtt_p95_ms"] <= TARGET_P95_MS
            and run["fps_min"] >= TARGET_FPS
        )
        print(json.dumps(run), file=sys.stderr, flush=True)
        return run
    finally:
        for visit in visits:
            await visit.close()
        await asyncio.sleep(2.0)  # the worker tears the sessions down


async def all_runs(site, counts: list[int], args) -> tuple[dict, list[dict]]:
    baseline = await run_n(site, 1, "load-baseline", args)
    runs = [await run_n(site, n, "load-bench", args) for n in counts]
    return baseline, runs


def measure(args) -> dict:
    skip_decoding()
    counts = [int(n) for n in args.sessions.split(",")]
    # N kiosks of the engine (a kiosk has one live call at a time) and the baseline's one
    kiosks = [(f"load-bench-{i}", args.engine) for i in range(max(counts))]
    kiosks.append(("load-baseline-0", "label"))
    # Each worker takes at most its share of the largest N (a full worker takes no offer),
    # so that N sessions spread over the workers.
    worker_env = {
        "MEDIA_ENGINE_MAX_SESSIONS": str(-(-max(counts) // args.workers)),
        "MEDIA_ENGINE_MAX_LOAD": "64",
    }
    with bench_site("load", kiosks=kiosks, workers=args.workers, worker_env=worker_env) as site:
        baseline, runs = asyncio.run(all_runs(site, counts, args))
    holding = [r["sessions"] for r in runs if r["holds"]]
    return {
        "max_sessions": max(holding) if holding else 0,
        "engine": args.engine,
        "workers": args.workers,
        "target": {"rtt_p95_ms": TARGET_P95_MS, "fps": TARGET_FPS, "sessions": 4},
        "runs": runs,
        "baseline": {"what": "1 session, label engine", **baseline},
        "seconds_per_run": args.seconds,
        "cores": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    args = parse_args()
    result = measure(args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
