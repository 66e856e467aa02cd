"""The Celery application: relays audit events into PostgreSQL and runs periodic jobs."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kiosk.settings")

app = Celery("kiosk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
def _serve_metrics(**kwargs) -> None:
    """``CELERY_METRICS_PORT``: Prometheus metrics of this Celery worker (outbox lag and relay
    errors) on ``METRICS_BIND`` (default 127.0.0.1). Prefork children count into
    ``PROMETHEUS_MULTIPROC_DIR`` when it is set (deploy/systemd sets it)."""
    port = os.environ.get("CELERY_METRICS_PORT", "").strip()
    if not port:
        return
    from prometheus_client import REGISTRY, CollectorRegistry

    from kiosk import metrics

    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    metrics.add_database_collector(registry)
    metrics.serve(int(port), registry)


@signals.task_failure.connect
@signals.task_retry.connect
def _count_relay_error(**kwargs) -> None:
    from kiosk import metrics

    metrics.RELAY_ERRORS.inc()
