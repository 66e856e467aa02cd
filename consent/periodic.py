"""The embedded default's Celery beat: the periodic jobs on daphne's own event loop.

With a broker, ``celery beat`` runs the schedule in ``CELERY_BEAT_SCHEDULE`` (outbox sweep,
consent expiry, checkpoints, retention). The embedded default has no broker and no beat, so
the first kiosk connection starts this task, which runs the same schedule in-process (each
job in a worker thread; a ``sessions.end`` it sends reaches the in-process media engine on
this loop).
"""

from __future__ import annotations

import asyncio
import logging
import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections

log = logging.getLogger(__name__)

_task: asyncio.Task | None = None
_loop: asyncio.AbstractEventLoop | None = None


def _run(name: str) -> None:
    from kiosk.celery import app

    try:
        app.tasks[name].apply(throw=True)
    except Exception:
        log.exception("periodic job %s failed", name)
    finally:
        connections.close_all()  # this pool thread's connection (jobs are seconds apart)


async def run_schedule(tick_s: float = 0.5) -> None:
    schedule = {
        entry["task"]: float(entry["schedule"]) for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    due = dict.fromkeys(schedule, 0.0)
    while True:
        now = time.monotonic()
        for name, interval in schedule.items():
            if now >= due[name]:
                due[name] = now + interval
                await sync_to_async(_run, thread_sensitive=False)(name)
        await asyncio.sleep(tick_s)


def ensure_started() -> asyncio.Task | None:
    """Start the in-process schedule once per event loop (only when tasks run eagerly)."""
    global _task, _loop
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        return None
    loop = asyncio.get_running_loop()
    if _task is not None and _loop is loop and not _task.done():
        return _task
    _loop = loop
    _task = loop.create_task(run_schedule(), name="consent-periodic-jobs")
    return _task


async def stop() -> None:
    """Cancel the in-process schedule (tests, shutdown)."""
    global _task, _loop
    task, _task, _loop = _task, None, None
    if task is not None:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
