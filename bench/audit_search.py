"""The dashboard's audit search on a large audit trail: every page is an index scan.

Fills a database of its own (``<name>_bench_audit_search``, created and dropped here) with
``--rows`` generated audit events (plain INSERTs through ``generate_series``: the chain's
hashes are not real, the search does not read them), runs each kind of search page the
dashboard serves (``dashboard.audit_search``) with ``EXPLAIN (ANALYZE, BUFFERS)``, and reports
per search: the median time of the page, the plan's scan nodes, and whether any node is a
sequential scan. The baseline is the same first page with OFFSET pagination (what a
Paginator would run), deep in the result.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kiosk python bench/audit_search.py

Last line: one JSON object (``rows``, ``pages``: {name: {p50_ms, seq_scan, nodes}},
``offset_baseline``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

FILL = """
INSERT INTO consent_auditevent (seq, event_id, occurred_at, recorded_at, actor_kind, actor,
    action, target, session_id, details, prev_hash, hash)
SELECT g, md5('e' || g)::uuid, now() - (%(rows)s - g) * interval '1 second',
  now() - (%(rows)s - g) * interval '1 second',
  CASE WHEN g %% 10 = 0 THEN 'user' WHEN g %% 10 < 5 THEN 'kiosk' ELSE 'system' END,
  CASE WHEN g %% 10 = 0 THEN 'staff' || (g %% 37) WHEN g %% 10 < 5 THEN 'kiosk-' || (g %% 200)
       ELSE 'media-engine' END,
  (ARRAY['session.started','session.ended','session.resolution','switch.off','switch.on',
         'consent.granted','session.error','audit.export'])[1 + g %% 8],
  'kiosk:kiosk-' || (g %% 200),
  md5('s' || (g / 20))::uuid,
  jsonb_build_object('kiosk', 'kiosk-' || (g %% 200), 'reason', 'generated ' || g),
  repeat('0', 64), repeat('a', 64)
FROM generate_series(1, %(rows)s) g
"""


def psql(server: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kiosk")
    server, _, name = url.rpartition("/")
    name = f"{name.split('?')[0] or 'kiosk'}_bench_audit_search"
    psql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    psql(server, f'CREATE DATABASE "{name}"')
    os.environ.update(
        DATABASE_URL=f"{server}/{name}",
        DJANGO_SETTINGS_MODULE="kiosk.settings",
        KIOSK_EMBEDDED="1",  # the embedded default's settings on this PostgreSQL
        PYTHONPATH=str(REPO_ROOT),
    )
    os.environ.pop("REDIS_URL", None)
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=REPO_ROOT,
            check=True,
        )
        import django

        django.setup()
        out = measure(args)
        from django.db import connections

        connections.close_all()
    finally:
        psql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(json.dumps(out))


def measure(args) -> dict:
    from django.db import connection

    from consent.models import AuditEvent
    from kiosk.dashboard import audit_search as search

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(FILL, {"rows": args.rows})
        cursor.execute("ANALYZE consent_auditevent")
    fill_s = time.perf_counter() - started
    now = dt.datetime.now(dt.UTC)
    session = AuditEvent.objects.filter(seq=args.rows // 3).values_list("session_id", flat=True)[0]
    deep = search.encode_cursor(now - dt.timedelta(seconds=args.rows * 2 // 3), args.rows // 3)
    cases = {
        "first page": (search.AuditQuery(), ""),
        "deep page (keyset)": (search.AuditQuery(), deep),
        "one hour, long ago": (
            search.AuditQuery(
                since=now - dt.timedelta(seconds=args.rows * 3 // 4),
                until=now - dt.timedelta(seconds=args.rows * 3 // 4 - 3600),
            ),
            "",
        ),
        "actor": (search.AuditQuery(actor="user:staff5"), ""),
        "action, deep": (search.AuditQuery(action="switch.off"), deep),
        "kiosk": (search.AuditQuery(kiosk="kiosk-17"), ""),
        "session": (search.AuditQuery(session=session), ""),
        "kiosk + action + since": (
            search.AuditQuery(
                kiosk="kiosk-8", action="session.started", since=now - dt.timedelta(days=2)
            ),
            "",
        ),
    }
    pages = {}
    for label, (query, before) in cases.items():
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            page = search.search(query, before=before)
            times.append((time.perf_counter() - t) * 1000)
        plan = ""
        for events in search.filtered(query):  # one query per branch (the kiosk filter: two)
            if before:
                events = search._older_than(events, *search.decode_cursor(before))
            plan += events.order_by("-occurred_at", "-seq")[: search.PAGE_SIZE + 1].explain(
                analyze=True
            )
        nodes = sorted(
            set(
                re.findall(
                    r"((?:Parallel )?(?:Seq|Index|Bitmap \w+|Index Only) Scan"
                    r"(?: Backward)?(?: using \w+| on \w+)?)",
                    plan,
                )
            )
        )
        pages[label] = {
            "rows_shown": len(page.events),
            "p50_ms": round(statistics.median(times), 2),
            "seq_scan": "Seq Scan" in plan,
            "nodes": nodes,
        }
        print(label, json.dumps(pages[label]), file=sys.stderr)
    # The baseline: OFFSET pagination at the same depth as the deep keyset page.
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        list(
            AuditEvent.objects.order_by("-occurred_at", "-seq")[
                args.rows * 2 // 3 : args.rows * 2 // 3 + search.PAGE_SIZE
            ]
        )
        times.append((time.perf_counter() - t) * 1000)
    offset_ms = round(statistics.median(times), 2)
    t = time.perf_counter()
    AuditEvent.objects.count()
    count_ms = round((time.perf_counter() - t) * 1000, 2)
    return {
        "rows": args.rows,
        "fill_s": round(fill_s, 1),
        "pages": pages,
        "any_seq_scan": any(p["seq_scan"] for p in pages.values()),
        "offset_baseline": {"deep_page_p50_ms": offset_ms, "count_all_ms": count_ms},
        "ratio_deep_offset_to_keyset": round(
            offset_ms / max(pages["deep page (keyset)"]["p50_ms"], 0.01), 1
        ),
    }


if __name__ == "__main__":
    main()
