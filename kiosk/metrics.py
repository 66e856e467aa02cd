"""Prometheus metrics of every process kind (daphne, media workers, Celery).

All metric objects live here, named ``kiosk_…``; the code that sees an event calls one of the
small functions below. Where they are exposed (never in public):

- **daphne**: ``GET /metrics`` (``kiosk/metrics_view.py``) with ``Authorization: Bearer
  $METRICS_TOKEN``, or a staff session allowed to view the dashboard; anyone else gets 403.
- **media workers** and **Celery**: their own HTTP listener on ``METRICS_PORT`` (media
  worker: ``--metrics-port``), bound to ``METRICS_BIND`` (default ``127.0.0.1``): a
  Prometheus agent on the same host scrapes it (docs/operations.md, "Metrics"). Celery's
  prefork children write to ``PROMETHEUS_MULTIPROC_DIR`` when it is set.

Labels are bounded sets (a stage, a reason, a state): never a session id, never a frame.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)

MS_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 40, 50, 75, 100, 150, 200, 300, 500, 1000, 2000)
FPS_BUCKETS = (1, 5, 10, 15, 20, 24, 26, 28, 30, 35)

SESSIONS = Gauge(
    "kiosk_media_sessions", "Media sessions on this worker by state", ["worker", "state"]
)
FPS = Histogram(
    "kiosk_session_fps",
    "Delivered frames per second, one sample per session a second",
    buckets=FPS_BUCKETS,
)
STAGE_MS = Histogram(
    "kiosk_stage_ms",
    "Pipeline stage time (p50 of the last frames, sampled each second)",
    ["stage"],
    buckets=MS_BUCKETS,
)
LOOP_MS = Histogram(
    "kiosk_loop_latency_ms", "Camera-to-screen loop measured by the kiosk page", buckets=MS_BUCKETS
)
RUNG_CHANGES = Counter("kiosk_rung_changes_total", "Adaptive resolution steps", ["direction"])
OFFERS_REFUSED = Counter("kiosk_offers_refused_total", "Offers refused, by reason", ["reason"])
WORKER_HEADROOM = Gauge("kiosk_worker_headroom", "Measured headroom (share of cores)", ["worker"])
WORKER_LOAD = Gauge("kiosk_worker_load", "Measured load (share of cores)", ["worker"])
WORKER_ACCEPTING = Gauge("kiosk_worker_accepting", "1 while the worker takes offers", ["worker"])
WORKER_DRAINING = Gauge("kiosk_worker_draining", "1 while the worker drains", ["worker"])
WORKER_HEARTBEAT = Gauge(
    "kiosk_worker_heartbeat_timestamp_seconds", "Unix time of the last heartbeat", ["worker"]
)
RELAY_ERRORS = Counter(
    "kiosk_audit_relay_errors_total", "Audit relay task failures and retries (Celery)"
)
FAILOVERS = Counter("kiosk_failovers_total", "Calls moved to another worker after one died")


def observe_worker(load: Any) -> None:
    """One heartbeat (``media_engine.capacity.Load``)."""
    WORKER_HEADROOM.labels(load.worker).set(load.headroom)
    WORKER_LOAD.labels(load.worker).set(load.load)
    WORKER_ACCEPTING.labels(load.worker).set(1 if load.accepting else 0)
    WORKER_DRAINING.labels(load.worker).set(1 if load.draining else 0)
    WORKER_HEARTBEAT.labels(load.worker).set(load.sent_at)


def observe_sessions(worker: str, states: list[str]) -> None:
    for state in ("connecting", "live", "paused"):
        SESSIONS.labels(worker, state).set(sum(1 for s in states if s == state))


def observe_session_stats(stats: dict[str, Any]) -> None:
    """One ``media.stats`` tick of a live session."""
    if stats.get("state") in ("live", "paused"):
        FPS.observe(float(stats.get("fps_out") or 0.0))
    for stage, figures in (stats.get("stage_ms") or {}).items():
        if isinstance(figures, dict) and "p50" in figures:
            STAGE_MS.labels(stage).observe(float(figures["p50"]))


def observe_loop(loop_ms: Any) -> None:
    if isinstance(loop_ms, int | float) and not isinstance(loop_ms, bool) and loop_ms >= 0:
        LOOP_MS.observe(float(loop_ms))


def refused(reason: str) -> None:
    OFFERS_REFUSED.labels(reason).inc()


def rung_changed(old: tuple[int, int] | None, new: tuple[int, int]) -> None:
    if old is not None:
        RUNG_CHANGES.labels("down" if new[0] < old[0] else "up").inc()


# --- read at scrape time from the database (daphne and Celery) -------------------------------


class DatabaseCollector:
    """Outbox lag and the switch, read when Prometheus scrapes (never on a hot path)."""

    def collect(self):
        lag = GaugeMetricFamily(
            "kiosk_audit_outbox_lag_seconds", "Age of the oldest audit event not yet relayed"
        )
        rows = GaugeMetricFamily("kiosk_audit_outbox_rows", "Audit events waiting in the outbox")
        switch = GaugeMetricFamily(
            "kiosk_fusion_switch_enabled", "1 while face fusion is on", labels=["scope"]
        )
        try:
            oldest, count, enabled, kiosks_off = _read_database_twice()
        except Exception as exc:  # a scrape must never fail because PostgreSQL is away
            log.warning("metrics: database not readable (%s)", exc)
            return
        lag.add_metric([], max(0.0, time.time() - oldest) if oldest else 0.0)
        rows.add_metric([], count)
        switch.add_metric(["global"], 1 if enabled else 0)
        switch.add_metric(["kiosks_off"], kiosks_off)
        yield from (lag, rows, switch)


def _read_database_twice() -> tuple[float | None, int, bool, int]:
    """Read; on a connection that died with a PostgreSQL restart, reconnect and read again."""
    from django.db import connection

    try:
        return _read_database()
    except Exception:
        if connection.in_atomic_block:
            raise
        connection.close()
        return _read_database()


def _read_database() -> tuple[float | None, int, bool, int]:
    from django.db.models import Min

    from consent.audit_models import AuditOutbox
    from kiosk.models import FusionSwitch, Kiosk

    summary = AuditOutbox.objects.aggregate(oldest=Min("created_at"))
    oldest = summary["oldest"].timestamp() if summary["oldest"] else None
    count = AuditOutbox.objects.count()
    row = FusionSwitch.objects.filter(pk=1).first()
    enabled = row.enabled if row is not None else True
    kiosks_off = Kiosk.objects.filter(fusion_enabled=False).count()
    return oldest, count, enabled, kiosks_off


_watched_loop: Any = None


class LoopCollector:
    """``kiosk_asyncio_tasks``: tasks alive on daphne's event loop (a leak shows as growth)."""

    def collect(self):
        import asyncio

        if _watched_loop is None or _watched_loop.is_closed():
            return
        tasks = GaugeMetricFamily("kiosk_asyncio_tasks", "Tasks alive on the event loop")
        tasks.add_metric([], len(asyncio.all_tasks(_watched_loop)))
        yield tasks


def watch_loop(loop: Any) -> None:
    """Count this event loop's tasks in the metrics (the signaling consumer calls it)."""
    global _watched_loop
    if _watched_loop is None:
        REGISTRY.register(LoopCollector())
    _watched_loop = loop


_database_collector_added = False


def add_database_collector(registry: CollectorRegistry = REGISTRY) -> None:
    global _database_collector_added
    if not _database_collector_added:
        registry.register(DatabaseCollector())
        _database_collector_added = True


def bind_address() -> str:
    return os.environ.get("METRICS_BIND", "127.0.0.1")


def tls_options() -> dict[str, Any]:
    """``METRICS_TLS_CERT``/``METRICS_TLS_KEY`` serve HTTPS; with ``METRICS_TLS_CLIENT_CA``
    only scrapers with a client certificate from that CA get an answer (mutual TLS: how a
    listener bound beyond loopback, e.g. on a Kubernetes pod's address, stays private)."""
    cert, key = os.environ.get("METRICS_TLS_CERT", ""), os.environ.get("METRICS_TLS_KEY", "")
    client_ca = os.environ.get("METRICS_TLS_CLIENT_CA", "")
    if not cert and not key and not client_ca:
        return {}
    if not cert or not key:
        raise ValueError("METRICS_TLS_CERT and METRICS_TLS_KEY go together")
    options: dict[str, Any] = {"certfile": cert, "keyfile": key}
    if client_ca:
        options.update(client_cafile=client_ca, client_auth_required=True)
    return options


def serve(port: int, registry: CollectorRegistry = REGISTRY) -> None:
    """Expose ``registry`` on ``METRICS_BIND``:``port`` (a thread of this process)."""
    address = bind_address()
    if address not in ("127.0.0.1", "::1", "localhost") and not tls_options().get(
        "client_auth_required"
    ):
        raise ValueError(
            f"METRICS_BIND={address} is beyond loopback: set METRICS_TLS_CERT, METRICS_TLS_KEY "
            "and METRICS_TLS_CLIENT_CA so that only the scraper can read the metrics"
        )
    start_http_server(port, addr=address, registry=registry, **tls_options())
    log.info("metrics on %s:%d/metrics", address, port)
