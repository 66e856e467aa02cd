"""Audit trail throughput: events/s appended to the hash chain through Celery into PostgreSQL
from several producers at once, with zero loss and zero duplicates; and verify speed.

What runs (all real): a private redis-server (the broker), a fresh PostgreSQL database with
the migrations (triggers included), one ``celery -A kiosk worker`` (prefork), and N producer
processes. Two ways in, measured in the same run:

- ``spool`` (the product's path): each producer is a media engine's event path: ``emit``
  writes each event to its durable SQLite spool, and the forwarder sends batches to the
  ``consent.ingest_events`` task, which appends a batch to the chain in one transaction.
- ``naive`` (the baseline): each producer sends one event per Celery task, and the worker
  appends each in its own transaction.

Usage: ``python bench/audit.py [--producers 4] [--events 20000] [--baseline-events 1200]``
(PostgreSQL from ``BENCH_DATABASE_URL``, default postgres://postgres@127.0.0.1:5432/
kiosk_bench_audit, dropped and created afresh). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kiosk.settings")
sys.path.insert(0, str(ROOT))

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/kiosk_bench_audit"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- producer processes ---------------------------------------------------------------------


def producer(mode: str, count: int, tag: str, start_file: Path) -> None:
    import django

    django.setup()
    from kiosk.celery import app
    from media_engine.audit_spool import EventSpool, SpoolForwarder, celery_send, make_event

    def event(i: int) -> dict:
        return make_event(
            f"bench.{mode}", session_id=None, kiosk="bench", details={"producer": tag, "i": i}
        )

    forwarder = None
    if mode == "spool":
        spool = EventSpool(Path(os.environ["KIOSK_VAR_DIR"]) / "spool" / f"{tag}.sqlite3")
        forwarder = SpoolForwarder(spool, celery_send, confirm_after_s=1.0)
        forwarder.start()
    while not start_file.exists():
        time.sleep(0.005)
    started = time.time()
    for i in range(count):
        if forwarder is not None:
            forwarder.spool.append(event(i))
            forwarder.notify()
        else:
            app.send_task("consent.ingest_events", args=[[event(i)]])
    submitted = time.time()
    if forwarder is not None:
        while len(forwarder.spool):
            time.sleep(0.01)
        forwarder.stop(timeout=1)
    print(
        json.dumps(
            {
                "tag": tag,
                "sent": count,
                "started": started,
                "submitted": submitted,
                "sent_by": time.time(),
            }
        )
    )


# --- the coordinator -------------------------------------------------------------------------


def recreate_database(url: str) -> None:
    import psycopg

    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name]
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def count_stored(action: str) -> int:
    from consent.models import AuditEvent

    return AuditEvent.objects.filter(action=action).count()


def run_phase(mode: str, producers: int, events: int, env: dict, tmp: Path) -> dict:
    from django.db import connection

    from consent.models import AuditEvent

    per = events // producers
    start_file = tmp / f"start-{mode}"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--producer",
                mode,
                "--count",
                str(per),
                "--tag",
                f"{mode}-{n}",
                "--start-file",
                str(start_file),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(producers)
    ]
    time.sleep(3.0)  # let the producers import Django and open their spools
    action = f"bench.{mode}"
    sent = per * producers
    start_file.touch()
    started = time.time()
    samples: list[tuple[float, int]] = [(started, 0)]
    stored, last_change = 0, started
    while stored < sent and time.time() - last_change < 60:
        time.sleep(0.25)
        now_stored = count_stored(action)
        now = time.time()
        samples.append((now, now_stored))
        if now_stored != stored:
            stored, last_change = now_stored, now
    finished = last_change
    outputs = [json.loads(p.communicate(timeout=120)[0].strip().splitlines()[-1]) for p in procs]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM consent_auditevent WHERE action = %s",
            [action],
        )
        rows, unique = cursor.fetchone()
    sent = sum(o["sent"] for o in outputs)
    # Sustained rate: events stored per 1 s window while the stream ran (after the first
    # rows, before the last), median over the windows.
    windows = []
    for (t0, c0), (t1, c1) in zip(samples, samples[4:], strict=False):
        if c0 > 0 and c1 < sent and t1 > t0:
            windows.append((c1 - c0) / (t1 - t0))
    return {
        "mode": mode,
        "producers": producers,
        "sent": sent,
        "stored": int(unique),
        "duplicates": int(rows - unique),
        "lost": int(sent - unique),
        "seconds": round(finished - started, 3),
        "events_per_s": round(unique / (finished - started), 1) if finished > started else 0,
        "sustained_median_per_s": round(statistics.median(windows), 1) if windows else None,
        "submit_s_max": round(max(o["submitted"] - o["started"] for o in outputs), 3),
        "chain_rows": AuditEvent.objects.count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--baseline-events", type=int, default=1200)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--producer")
    parser.add_argument("--count", type=int)
    parser.add_argument("--tag")
    parser.add_argument("--start-file")
    args = parser.parse_args()
    if args.producer:
        producer(args.producer, args.count, args.tag, Path(args.start_file))
        return

    db_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    tmp = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    port = free_port()
    redis_url = f"redis://127.0.0.1:{port}/0"
    redis = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(tmp),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
        ],
        stdout=subprocess.DEVNULL,
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "KIOSK_VAR_DIR": str(tmp / "var"),
        "KIOSK_EMBEDDED": "1",  # the embedded default's settings on these services
        "AUDIT_MEDIA_EVENTS": "1",
        "KIOSK_LOG_LEVEL": "WARNING",
    }
    worker = None
    try:
        recreate_database(db_url)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True
        )
        names = ("DATABASE_URL", "REDIS_URL", "KIOSK_VAR_DIR", "KIOSK_EMBEDDED")
        os.environ.update({k: env[k] for k in names})
        import django

        django.setup()
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "kiosk",
                "worker",
                "--loglevel",
                "WARNING",
                "--pool",
                "prefork",
                "--concurrency",
                str(args.concurrency),
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(tmp / "worker.log").open("w"),
        )
        from kiosk.celery import app
        from media_engine.audit_spool import make_event

        app.send_task(
            "consent.ingest_events",
            args=[[make_event("bench.warmup", session_id=None, kiosk=None, details={})]],
        )
        deadline = time.time() + 120
        while count_stored("bench.warmup") < 1:
            if time.time() > deadline:
                raise SystemExit(
                    "the Celery worker did not start:\n" + (tmp / "worker.log").read_text()[-3000:]
                )
            time.sleep(0.2)

        spool = run_phase("spool", args.producers, args.events, env, tmp)
        print(json.dumps(spool), flush=True)
        naive = run_phase("naive", args.producers, args.baseline_events, env, tmp)
        print(json.dumps(naive), flush=True)

        from consent.verification import verify_chain

        report = verify_chain()
        assert report.ok, (report.first_break, report.problems)
        verify_runs = [verify_chain().rows_per_s for _ in range(3)]
        result = {
            "events_per_s": spool["events_per_s"],
            "sustained_median_per_s": spool["sustained_median_per_s"],
            "sent": spool["sent"],
            "stored": spool["stored"],
            "duplicates": spool["duplicates"],
            "lost": spool["lost"],
            "producers": args.producers,
            "worker_concurrency": args.concurrency,
            "verify_rows_per_s": round(statistics.median(verify_runs)),
            "verify_rows": report.rows,
            "baseline_naive_events_per_s": naive["events_per_s"],
            "baseline_naive_sent": naive["sent"],
            "baseline_naive_stored": naive["stored"],
            "speedup_vs_naive": round(spool["events_per_s"] / naive["events_per_s"], 2)
            if naive["events_per_s"]
            else None,
            "target_events_per_s": 2000,
            "target_met": spool["events_per_s"] >= 2000
            and spool["lost"] == 0
            and spool["duplicates"] == 0,
            "run_id": uuid.uuid4().hex[:8],
        }
        print(json.dumps(result))
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        redis.terminate()
        redis.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
