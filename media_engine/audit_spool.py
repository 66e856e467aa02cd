"""The media engine's audit events: a durable local spool, forwarded through Celery.

``submit`` writes the event to an append-only SQLite file first (WAL, fsync on commit) and
returns; a forwarder thread sends what the spool holds to the ``consent.ingest_events``
Celery task in batches and deletes a batch only after the broker took it. While the broker
is down the events wait in the file (and survive a restart of this process: the next
worker on this host adopts spool files whose owner is gone). A batch that was sent but not
yet deleted when the process died is sent again; the audit trail stores each event id once.

Only what ``media_engine.events.emit`` accepts goes in here: names, ids, sizes, counts and
reasons. Never frames, landmarks or images.
"""

from __future__ import annotations

import atexit
import datetime as dt
import fcntl
import json
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

INGEST_TASK = "consent.ingest_events"
BATCH = 500
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS spool (id INTEGER PRIMARY KEY AUTOINCREMENT, event TEXT, "
    "event_id TEXT, sent_at REAL, attempts INTEGER NOT NULL DEFAULT 0)"
)
# A sent event is confirmed (found in the audit trail) after this long, else sent again;
# the wait doubles with each attempt, up to CONFIRM_MAX_S.
CONFIRM_AFTER_S = 10.0
CONFIRM_MAX_S = 300.0


def spool_synchronous() -> str:
    """SQLite's ``synchronous`` for the spool. NORMAL (the default) in WAL mode keeps every
    committed event through a crash or SIGKILL of this process (about 14,000 appends/s
    here); FULL also through a power loss or kernel crash (an fsync per event: about 560
    appends/s here). ``AUDIT_SPOOL_SYNCHRONOUS`` chooses."""
    value = os.environ.get("AUDIT_SPOOL_SYNCHRONOUS", "NORMAL").strip().upper()
    if value not in {"NORMAL", "FULL", "EXTRA"}:
        raise ValueError(f"AUDIT_SPOOL_SYNCHRONOUS must be NORMAL, FULL or EXTRA, not {value!r}")
    return value


class EventSpool:
    """An append-only durable queue of JSON events in one SQLite file, owned by one process
    (an exclusive ``flock`` on ``<file>.lock`` while it is open)."""

    def __init__(self, path: Path, *, lock: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fd: int | None = None
        if lock:
            fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise
            self._lock_fd = fd
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={spool_synchronous()}")
        self._db.execute(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(spool)")}
        for column, kind in (
            ("event_id", "TEXT"),
            ("sent_at", "REAL"),
            ("attempts", "INTEGER NOT NULL DEFAULT 0"),
        ):
            if column not in columns:  # a spool file written by an older version
                self._db.execute(f"ALTER TABLE spool ADD COLUMN {column} {kind}")
        self._mutex = threading.Lock()

    def extend(self, events: Iterable[dict[str, Any]]) -> None:
        rows = [
            (json.dumps(e, separators=(",", ":"), ensure_ascii=False), str(e.get("event_id")))
            for e in events
        ]
        with self._mutex:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT INTO spool (event, event_id) VALUES (?, ?)", rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def append(self, event: dict[str, Any]) -> None:
        self.extend([event])

    def peek(self, limit: int = BATCH) -> list[tuple[int, dict[str, Any]]]:
        """The oldest events not sent yet."""
        with self._mutex:
            rows = self._db.execute(
                "SELECT id, event FROM spool WHERE sent_at IS NULL ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
        return [(row_id, json.loads(text)) for row_id, text in rows]

    def mark_sent(self, last_id: int, now: float) -> None:
        """The broker took the events up to ``last_id``: keep them until confirmed."""
        with self._mutex:
            self._db.execute(
                "UPDATE spool SET sent_at = ?, attempts = attempts + 1 "
                "WHERE id <= ? AND sent_at IS NULL",
                (now, last_id),
            )

    def remove_through(self, last_id: int) -> None:
        with self._mutex:
            self._db.execute("DELETE FROM spool WHERE id <= ?", (last_id,))

    def unconfirmed(self, now: float, after_s: float, limit: int = 2000) -> list[tuple[int, str]]:
        """(row id, event id) of events sent long enough ago to be in the audit trail."""
        with self._mutex:
            return self._db.execute(
                "SELECT id, event_id FROM spool WHERE sent_at IS NOT NULL "
                "AND sent_at <= ? - min(?, ? * (1 << min(attempts - 1, 20))) "
                "ORDER BY id LIMIT ?",
                (now, CONFIRM_MAX_S, after_s, limit),
            ).fetchall()

    def settle(self, confirmed: list[int], missing: list[int]) -> None:
        """Forget the confirmed rows; send the missing ones again."""
        with self._mutex:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM spool WHERE id = ?", [(i,) for i in confirmed])
            self._db.executemany(
                "UPDATE spool SET sent_at = NULL WHERE id = ?", [(i,) for i in missing]
            )
            self._db.execute("COMMIT")

    def __len__(self) -> int:
        """Events not yet confirmed in the audit trail (unsent or sent)."""
        with self._mutex:
            return self._db.execute("SELECT count(*) FROM spool").fetchone()[0]

    def unsent(self) -> int:
        with self._mutex:
            return self._db.execute("SELECT count(*) FROM spool WHERE sent_at IS NULL").fetchone()[
                0
            ]

    def close(self) -> None:
        with self._mutex:
            self._db.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def adopt_orphans(directory: Path) -> list[EventSpool]:
    """Spool files in ``directory`` whose owning process is gone (their lock is free)."""
    found = []
    for path in sorted(Path(directory).glob("*.sqlite3")):
        try:
            found.append(EventSpool(path))
        except BlockingIOError:
            continue  # a live process owns it
    return found


def celery_send(events: list[dict[str, Any]]) -> None:
    """Hand a batch to Celery; raises when the broker did not take it."""
    from kiosk.celery import app

    if app.conf.task_always_eager:
        # The embedded default: no broker, the task runs here (and raises on failure).
        app.tasks[INGEST_TASK].apply(args=[events], throw=True)
    else:
        app.send_task(INGEST_TASK, args=[events], retry=False)


def stored_event_ids(event_ids: list[str]) -> set[str]:
    """Which of these events the audit trail holds (the media worker reads the database)."""
    from consent.models import AuditEvent

    found = AuditEvent.objects.filter(event_id__in=event_ids).values_list("event_id", flat=True)
    return {str(event_id) for event_id in found}


class SpoolForwarder(threading.Thread):
    """Sends the spool's events in order, batch by batch, retrying with backoff."""

    def __init__(
        self,
        spool: EventSpool,
        send: Callable[[list[dict[str, Any]]], None] = celery_send,
        *,
        orphans: Iterable[EventSpool] = (),
        batch: int = BATCH,
        max_backoff_s: float = 5.0,
        linger_s: float = 0.2,
        confirm: Callable[[list[str]], set[str]] | None = stored_event_ids,
        confirm_after_s: float = CONFIRM_AFTER_S,
    ) -> None:
        super().__init__(name="audit-spool-forwarder", daemon=True)
        self.spool, self.send, self.batch = spool, send, batch
        self.orphans = list(orphans)
        self.max_backoff_s = max_backoff_s
        # After a partial batch, wait this long so that a busy stream goes out in large
        # batches (one transaction each) instead of one task per event.
        self.linger_s = linger_s
        # End to end: a sent event stays in the spool until the audit trail is seen to hold
        # it; one that is not there after confirm_after_s (a message the broker or a worker
        # lost) is sent again. ``confirm=None`` forgets events once the broker took them.
        self.confirm = confirm
        self.confirm_after_s = confirm_after_s
        self.resent = 0
        self._next_confirm = 0.0
        self.sent = 0
        self.failures = 0
        self._wake = threading.Event()
        self._halt = threading.Event()

    def notify(self) -> None:
        self._wake.set()

    def _forward(self, spool: EventSpool) -> int:
        """Send one batch; returns how many events it held."""
        rows = spool.peek(self.batch)
        if not rows:
            return 0
        self.send([event for _, event in rows])
        if self.confirm is None:
            spool.remove_through(rows[-1][0])
        else:
            spool.mark_sent(rows[-1][0], time.time())
        self.sent += len(rows)
        return len(rows)

    def _confirm(self, spool: EventSpool) -> None:
        """Forget what the audit trail holds; send again what it does not."""
        now = time.time()
        if self.confirm is None or now < self._next_confirm:
            return
        self._next_confirm = now + min(1.0, self.confirm_after_s / 2)
        rows = spool.unconfirmed(now, self.confirm_after_s)
        if not rows:
            return
        stored = self.confirm([event_id for _, event_id in rows])
        confirmed = [row_id for row_id, event_id in rows if event_id in stored]
        missing = [row_id for row_id, event_id in rows if event_id not in stored]
        spool.settle(confirmed, missing)
        if missing:
            self.resent += len(missing)
            log.warning("audit spool: %d sent event(s) never arrived; sending again", len(missing))

    def run(self) -> None:
        backoff = 0.2
        while not self._halt.is_set():
            try:
                for orphan in list(self.orphans):
                    while self._forward(orphan):
                        pass
                    self._next_confirm = 0.0
                    self._confirm(orphan)
                    if len(orphan):
                        continue  # sent, not yet confirmed: look again on the next round
                    orphan.close()
                    for suffix in ("", "-wal", "-shm", ".lock"):
                        Path(f"{orphan.path}{suffix}").unlink(missing_ok=True)
                    self.orphans.remove(orphan)
                sent = self._forward(self.spool)
                self._confirm(self.spool)
                backoff = 0.2
                if not sent:
                    self._wake.wait(0.5)
                    self._wake.clear()
                elif sent < self.batch:
                    self._halt.wait(self.linger_s)
            except Exception as exc:
                self.failures += 1
                log.warning(
                    "audit spool: broker unreachable (%s); %d event(s) wait", exc, len(self.spool)
                )
                self._halt.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
            finally:
                _close_django_connections()
        _close_django_connections(final=True)

    def stop(self, timeout: float = 5.0) -> None:
        """Try to send what is left for up to ``timeout`` seconds, then stop (the rest stays
        in the file for the next process)."""
        deadline = threading.Event()
        timer = threading.Timer(timeout, deadline.set)
        timer.start()
        try:
            while not deadline.is_set() and self.spool.unsent():
                self.notify()
                deadline.wait(0.05)
        finally:
            timer.cancel()
            self._halt.set()
            self.notify()
            self.join(timeout=2.0)


def _close_django_connections(final: bool = False) -> None:
    """In the embedded default the forwarder thread uses Django's database directly."""
    try:
        from django.db import close_old_connections, connections

        connections.close_all() if final else close_old_connections()
    except Exception:  # pragma: no cover - Django not configured
        pass


def actor_name() -> str:
    return f"media-engine@{socket.gethostname()}:{os.getpid()}"


def make_event(
    action: str, *, session_id: str | None, kiosk: str | None, details: dict[str, Any]
) -> dict[str, Any]:
    """The wire form that ``consent.ingest_events`` accepts (see consent.audit)."""
    return {
        "event_id": str(uuid.uuid4()),
        "occurred_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": f"system:{actor_name()}",
        "action": action,
        "target": f"kiosk:{kiosk}" if kiosk else "",
        "session_id": str(session_id) if session_id else None,
        "details": details,
    }


_process_lock = threading.Lock()
_forwarder: SpoolForwarder | None = None


def spool_dir() -> Path:
    from django.conf import settings

    return Path(settings.AUDIT_SPOOL_DIR)


def forwarder() -> SpoolForwarder:
    """This process's spool and forwarder, started on first use."""
    global _forwarder
    with _process_lock:
        if _forwarder is None or not _forwarder.is_alive():
            directory = spool_dir()
            orphans = adopt_orphans(directory)
            name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.sqlite3"
            spool = EventSpool(directory / name)
            _forwarder = SpoolForwarder(spool, orphans=orphans)
            _forwarder.start()
            atexit.register(_forwarder.stop, 2.0)
        return _forwarder


def submit(
    action: str, *, session_id: str | None, kiosk: str | None, details: dict[str, Any]
) -> None:
    """Keep one media event durably and let the forwarder send it."""
    sender = forwarder()
    sender.spool.append(make_event(action, session_id=session_id, kiosk=kiosk, details=details))
    sender.notify()
