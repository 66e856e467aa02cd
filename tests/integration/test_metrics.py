"""Prometheus metrics: daphne's /metrics (token or staff only), a media worker's own
listener on loopback during a real call, Celery's listener, and JSON log lines."""

import asyncio
import json
import logging
import time
import urllib.request

import pytest
from django.db import connection

from consent import services
from kiosk.logformat import JsonFormatter, current_session
from kiosk.models import Engine, FusionSwitch, Kiosk
from tests.dashboard_support import login, staff_user
from tests.support.channel_call import ChannelCall
from tests.support.media_workers import media_workers
from tests.support.redis_server import free_port

pytestmark = [pytest.mark.integration]


def scrape(url: str, wait_s: float = 30.0) -> str:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def value(text: str, name: str) -> float:
    """The value of the first sample line starting with ``name``."""
    for line in text.splitlines():
        if line.startswith(name):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in the metrics:\n{text[:3000]}")


@pytest.mark.django_db
def test_daphne_metrics_need_the_token_or_a_staff_login(client, monkeypatch):
    kiosk = Kiosk.objects.create(slug="m-1", name="M 1", engine=Engine.LABEL)
    Kiosk.objects.create(slug="m-2", name="M 2", engine=Engine.LABEL, fusion_enabled=False)
    FusionSwitch.objects.update_or_create(pk=1, defaults={"enabled": True, "reason": "t"})
    services.start_kiosk_session(kiosk, consent_given=True, language="en")  # an outbox row
    monkeypatch.setenv("METRICS_TOKEN", "scrape-secret-123")

    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="scrape-secret-123").status_code == 403
    login(client, staff_user(None, "nobody"))  # logged in, no dashboard role
    assert client.get("/metrics").status_code == 403
    client.logout()
    client.force_login(staff_user("operator", "olga"))  # password only: no second factor
    assert client.get("/metrics").status_code == 403
    client.logout()

    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret-123")
    assert response.status_code == 200
    text = response.content.decode()
    assert value(text, "kiosk_audit_outbox_rows") >= 1
    assert value(text, "kiosk_audit_outbox_lag_seconds") >= 0
    assert value(text, 'kiosk_fusion_switch_enabled{scope="global"}') == 1
    assert value(text, 'kiosk_fusion_switch_enabled{scope="kiosks_off"}') == 1

    login(client, staff_user("auditor", "ada"))
    assert client.get("/metrics").status_code == 200
    client.logout()
    login(client, staff_user("operator", "oskar"))  # with the second factor
    assert client.get("/metrics").status_code == 200


@pytest.mark.django_db
def test_no_token_configured_means_staff_only(client, monkeypatch):
    monkeypatch.delenv("METRICS_TOKEN", raising=False)
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403


@pytest.mark.django_db(transaction=True)
async def test_a_media_worker_serves_its_metrics_on_loopback(layer, redis_url):
    from asgiref.sync import sync_to_async

    await sync_to_async(Kiosk.objects.create)(slug="m-3", name="M 3", engine=Engine.LABEL)
    port = free_port()
    settings = connection.settings_dict
    with media_workers(settings, redis_url, count=1, METRICS_PORT=str(port)) as (_worker,):
        expired, call = ChannelCall(layer, "m-3"), ChannelCall(layer, "m-3")
        try:
            await expired.send_offer(deadline_s=-1)
            await expired.wait_for("media.refused", within=20)
            await call.send_offer()
            await call.connect()
            await call.wait_frames(30)
            await call.control("session.client_stats", stats={"loop_ms": 87.0})
            await asyncio.sleep(2.5)  # stats ticks
            text = await asyncio.to_thread(scrape, f"http://127.0.0.1:{port}/metrics")
        finally:
            await expired.close()
            await call.close()
    assert value(text, 'kiosk_offers_refused_total{reason="expired"}') == 1
    assert value(text, 'kiosk_media_sessions{state="live",worker="worker-1"}') == 1
    assert value(text, 'kiosk_worker_headroom{worker="worker-1"}') >= 0
    assert value(text, 'kiosk_worker_heartbeat_timestamp_seconds{worker="worker-1"}') > 0
    assert value(text, "kiosk_session_fps_count") >= 1
    assert value(text, 'kiosk_stage_ms_count{stage="total"}') >= 1
    assert value(text, "kiosk_loop_latency_ms_count") >= 1
    assert value(text, "kiosk_loop_latency_ms_sum") >= 87.0


def test_json_log_lines_carry_the_session_id_and_only_the_message():
    formatter = JsonFormatter()
    record = logging.LogRecord(
        "media_engine.session", logging.INFO, __file__, 1, "%s", ("x",), None
    )
    token = current_session.set("3f2a-session")
    try:
        line = json.loads(formatter.format(record))
    finally:
        current_session.reset(token)
    assert line["session_id"] == "3f2a-session" and line["message"] == "x"
    assert line["level"] == "INFO" and line["logger"] == "media_engine.session"
    plain = json.loads(formatter.format(record))
    assert "session_id" not in plain


@pytest.mark.django_db(transaction=True)
def test_a_celery_worker_serves_outbox_lag_and_relay_errors(tmp_path):
    from tests.integration.audit_processes import CeleryWorker
    from tests.support.redis_server import private_redis

    port = free_port()
    multiproc = tmp_path / "prom"
    multiproc.mkdir()
    with private_redis() as broker:
        worker = CeleryWorker(
            connection.settings_dict,
            broker.url,
            tmp_path / "celery.log",
            CELERY_METRICS_PORT=str(port),
            PROMETHEUS_MULTIPROC_DIR=str(multiproc),
        )
        worker.start()
        try:
            text = scrape(f"http://127.0.0.1:{port}/metrics", wait_s=60)
        finally:
            worker.stop()
    assert value(text, "kiosk_audit_outbox_lag_seconds") >= 0
    assert value(text, "kiosk_audit_relay_errors_total") == 0
