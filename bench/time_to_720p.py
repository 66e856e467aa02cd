"""Time to full resolution: how soon a calm loopback call gets (and keeps) the 720p rung.

A real aiortc kiosk peer sends a 1280×720 camera at ``--fps`` to the product's media session
(``tests/support/full_resolution.py``: real pipeline with adaptive resolution, loopback only).
Two runs in one process:

- ``receiver``: this project's signal, the kiosk's own REMB, a limit only while it measures
  congestion (``media_engine/bandwidth.py``), encoder started at a LAN's rate;
- ``stock`` (the baseline): the signal used before, aiortc's encoder target read as the
  path's bitrate (0.5 Mb/s until a REMB), aiortc's 0.5 Mb/s start.

Per run: seconds from the answer to live (connected), from live to the first returned frame
and to the moment since which every returned frame is 1280×720 (null: it did not end at
720p), the share of 720p frames, the rung and the reason of its last move, the receiver's
last and lowest estimate.
The last line is one JSON object.

    python bench/time_to_720p.py [--seconds 12] [--fps 15] [--engine label] [--runs 3]
"""

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kiosk.settings")


async def measure(args: argparse.Namespace) -> dict:
    from media_engine.ice import offer_loopback_candidates
    from tests.support.full_resolution import full_resolution_call

    offer_loopback_candidates()
    runs: dict[str, list[dict]] = {"receiver": [], "stock": []}
    for _ in range(args.runs):
        for name, estimate in (("receiver", "receiver"), ("stock", "encoder_target")):
            call = await full_resolution_call(
                args.seconds, engine=args.engine, fps=args.fps, estimate=estimate
            )
            runs[name].append(asdict(call))
            print(f"{name}: {json.dumps(asdict(call))}", flush=True)
    return runs


def median(values: list) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 2) if known else None


def summary(runs: list[dict]) -> dict:
    return {
        "time_to_720p_s_median": median([r["time_to_720p_s"] for r in runs]),
        "ended_at_720p": sum(r["time_to_720p_s"] is not None for r in runs),
        "share_720p_median": median([r["share_720p"] for r in runs]),
        "time_to_first_frame_s_median": median([r["time_to_first_frame_s"] for r in runs]),
        "time_to_live_s_median": median([r["time_to_live_s"] for r in runs]),
        "last_reasons": sorted({r["reason"] for r in runs}),
        "receiver_estimate_bps_median": median([r["receiver_estimate_bps"] for r in runs]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--engine", default="label")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    import logging

    import django

    django.setup()
    # no database here: the audit spool's retries are noise for this bench
    logging.getLogger("media_engine.audit_spool").setLevel(logging.ERROR)
    load_before = os.getloadavg()[0]
    runs = asyncio.run(measure(args))
    receiver, stock = summary(runs["receiver"]), summary(runs["stock"])
    result = {
        "benchmark": "time_to_720p",
        "engine": args.engine,
        "camera": f"1280x720@{args.fps:g}",
        "seconds": args.seconds,
        "runs": args.runs,
        "receiver": receiver,
        "stock": stock,
        "target_s": 2.0,
        "target_met": receiver["ended_at_720p"] == args.runs
        and (receiver["time_to_720p_s_median"] or 99) <= 2.0,
        "machine": f"{platform.node()} {os.cpu_count()} cpu {platform.machine()}",
        "load_avg": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
