"""Every audit event arrives exactly once, through a real broker and real Celery worker
processes, while the worker is killed with SIGKILL and the broker is restarted in the
middle of the stream; media events wait in the durable spool while the broker is down."""

import threading
import time
import uuid

import kombu.pools
import pytest
from django.db import connection, transaction
from django.utils import timezone

from consent import audit, chain
from consent.models import AuditEvent, AuditOutbox
from media_engine.audit_spool import EventSpool, SpoolForwarder, adopt_orphans, celery_send
from tests.integration.audit_processes import CeleryWorker, PrivateRedis

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(tmp_path):
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def celery_via(broker):
    """Point this process's Celery app at the private broker (instead of running eagerly)."""
    from kiosk.celery import app

    def reset_pools() -> None:
        # ``app.pool`` is kombu's process-wide pool for the broker URL: closing it alone
        # left it, closed, in kombu's registry, and every later relay of this process met
        # "Acquire on closed pool" (deferred to the sweep). Close them all and empty it.
        kombu.pools.reset()
        app._pool = None
        app.amqp._producer_pool = None

    saved = {k: app.conf[k] for k in ("broker_url", "task_always_eager", "broker_write_url")}
    app.conf.update(broker_url=broker.url, broker_write_url=broker.url, task_always_eager=False)
    reset_pools()
    yield app
    reset_pools()
    app.conf.update(saved)


def wait_for(predicate, timeout: float, what, worker: CeleryWorker | None = None) -> None:
    """Wait for ``predicate``, restarting the worker if it exited (its supervisor's job)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if worker is not None:
            worker.supervise()
        if time.monotonic() > deadline:
            tail = worker.log_tail() if worker else ""
            described = what() if callable(what) else what
            pytest.fail(f"timed out waiting for {described}\n--- worker log ---\n{tail}")
        time.sleep(0.2)


def stored_ids() -> list[uuid.UUID]:
    return list(AuditEvent.objects.values_list("event_id", flat=True))


def assert_chain_verifies() -> None:
    rows = (e.as_chain_row() for e in AuditEvent.objects.order_by("seq"))
    walk = chain.verify_rows(rows)
    assert walk.first_break is None, walk.first_break


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(420)
def test_exactly_once_through_worker_kill_and_broker_restart(tmp_path, broker, celery_via):
    worker = CeleryWorker(
        connection.settings_dict, broker.url, tmp_path / "worker.log", beat_dir=tmp_path
    )
    spool = EventSpool(tmp_path / "spool" / "media.sqlite3")
    forwarder = SpoolForwarder(spool, celery_send, batch=50, max_backoff_s=1.0, confirm_after_s=3.0)
    sent: list[str] = []
    errors: list[BaseException] = []
    total = 1200

    def produce() -> None:
        try:
            for i in range(total):
                if i % 2:
                    event = {
                        "event_id": str(uuid.uuid4()),
                        "occurred_at": chain.canonical_time(timezone.now()),
                        "actor": "system:media-engine@test",
                        "action": "session.resolution",
                        "target": "kiosk:demo",
                        "session_id": None,
                        "details": {"i": i, "height": 360},
                    }
                    spool.append(event)
                    forwarder.notify()
                    sent.append(event["event_id"])
                else:
                    with transaction.atomic():
                        sent.append(str(audit.record_event("kiosk:demo", "tick", details={"i": i})))
                time.sleep(0.01)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    worker.start()
    forwarder.start()
    producer = threading.Thread(target=produce)
    try:
        producer.start()
        wait_for(lambda: AuditEvent.objects.count() >= 100, 120, "the first events", worker)
        worker.kill9()
        time.sleep(1.0)
        worker.start()
        wait_for(lambda: len(sent) >= total * 0.55, 180, "the stream to go on", worker)
        broker.restart(down_s=1.5)
        wait_for(lambda: not producer.is_alive(), 300, "the producer to finish", worker)
        assert not errors, errors
        wait_for(
            lambda: AuditEvent.objects.count() >= total and not AuditOutbox.objects.exists(),
            180,
            lambda: (
                f"all {total} events (stored {AuditEvent.objects.count()}, outbox "
                f"{AuditOutbox.objects.count()}, spool {len(spool)}, sent {len(sent)}, "
                f"worker restarts {worker.restarts})"
            ),
            worker,
        )
        time.sleep(6)  # redeliveries of unacked messages (visibility 4 s) land by now
        worker.supervise()
        wait_for(lambda: len(spool) == 0, 60, "the spool to see its events stored", worker)
        assert forwarder.failures >= 1, "the broker restart should have been noticed"
    finally:
        try:
            forwarder.stop(timeout=2)
        finally:
            worker.stop()
    ids = stored_ids()
    assert len(ids) == total == len(set(ids))
    assert {str(i) for i in ids} == set(sent)
    assert_chain_verifies()


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(300)
def test_media_events_wait_in_the_spool_while_the_broker_is_down(tmp_path, broker, celery_via):
    broker.stop()
    spool = EventSpool(tmp_path / "spool" / "media.sqlite3")
    forwarder = SpoolForwarder(spool, celery_send, max_backoff_s=0.5, confirm_after_s=1.0)
    forwarder.start()
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "occurred_at": chain.canonical_time(timezone.now()),
            "actor": "system:media-engine@test",
            "action": "session.started",
            "target": "kiosk:demo",
            "session_id": str(uuid.uuid4()),
            "details": {"engine": "label"},
        }
        for _ in range(25)
    ]
    worker = CeleryWorker(connection.settings_dict, broker.url, tmp_path / "worker.log")
    try:
        spool.extend(events)
        forwarder.notify()
        wait_for(lambda: forwarder.failures >= 2, 60, "the forwarder to find the broker down")
        assert len(spool) == 25
        broker.start()
        worker.start()
        wait_for(lambda: AuditEvent.objects.count() == 25, 180, "the spooled events", worker)
        wait_for(lambda: len(spool) == 0, 60, "the spool to see its events stored")
    finally:
        try:
            forwarder.stop(timeout=2)
        finally:
            worker.stop()
    assert len(spool) == 0
    stored = list(AuditEvent.objects.order_by("seq").values_list("event_id", flat=True))
    assert [str(i) for i in stored] == [e["event_id"] for e in events]


@pytest.mark.django_db(transaction=True)
def test_an_orphaned_spool_is_adopted_and_sent_once(tmp_path):
    """A worker died with events in its spool: the next one on the host sends them (here the
    embedded default: the task runs eagerly)."""
    directory = tmp_path / "spool"
    dead = EventSpool(directory / "dead-worker.sqlite3")
    wire = [
        audit.event_to_dict(audit.make_event("system:media", "session.ended", details={"n": n}))
        for n in range(5)
    ]
    dead.extend(wire)
    dead.extend(wire[:2])  # sent twice before the crash: still stored once
    dead.close()
    orphans = adopt_orphans(directory)
    assert [o.path.name for o in orphans] == ["dead-worker.sqlite3"]
    mine = EventSpool(directory / "me.sqlite3")
    forwarder = SpoolForwarder(mine, celery_send, orphans=orphans)
    forwarder.start()
    try:
        wait_for(lambda: AuditEvent.objects.count() == 5 and not forwarder.orphans, 60, "orphans")
    finally:
        forwarder.stop(timeout=2)
    assert not (directory / "dead-worker.sqlite3").exists()
    assert sorted(str(i) for i in stored_ids()) == sorted(e["event_id"] for e in wire)


def test_spool_is_ordered_durable_and_owned_by_one_process(tmp_path):
    path = tmp_path / "s.sqlite3"
    spool = EventSpool(path)
    spool.extend({"n": n} for n in range(10))
    with pytest.raises(BlockingIOError):
        EventSpool(path)  # another owner
    rows = spool.peek(4)
    assert [e["n"] for _, e in rows] == [0, 1, 2, 3]
    spool.remove_through(rows[-1][0])
    spool.close()
    reopened = EventSpool(path)
    assert [e["n"] for _, e in reopened.peek(100)] == list(range(4, 10))
    reopened.close()


@pytest.mark.django_db(transaction=True)
def test_a_batch_the_broker_lost_is_sent_again(tmp_path):
    """The broker took a batch and lost it (no persistence, a bug): the spool keeps every
    sent event until the audit trail holds it, and sends the missing ones again."""
    spool = EventSpool(tmp_path / "spool" / "media.sqlite3")
    lost: list[list[dict]] = []

    def lossy_send(events: list[dict]) -> None:
        if not lost:
            lost.append(events)  # "accepted", never delivered
            return
        celery_send(events)

    wire = [
        audit.event_to_dict(audit.make_event("system:media", "session.ended", details={"n": n}))
        for n in range(8)
    ]
    forwarder = SpoolForwarder(spool, lossy_send, confirm_after_s=0.5)
    spool.extend(wire)
    forwarder.start()
    try:
        wait_for(lambda: AuditEvent.objects.count() == 8 and len(spool) == 0, 60, "a resend")
    finally:
        forwarder.stop(timeout=2)
    assert len(lost) == 1 and len(lost[0]) == 8
    assert forwarder.resent == 8
    assert sorted(str(i) for i in stored_ids()) == sorted(e["event_id"] for e in wire)
