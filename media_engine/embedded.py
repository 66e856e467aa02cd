"""The embedded default: the media worker inside the daphne process, started on first use.

With ``MEDIA_ENGINE_IN_PROCESS`` (on by default when there is no ``REDIS_URL``) the signaling
consumer calls ``ensure_started()`` before it sends its first offer; the same ``MediaWorker``
as ``manage.py media_engine`` then runs as a task on daphne's event loop and takes offers from
the (in-memory) channel layer. Production runs separate worker processes and this is a no-op.
"""

import asyncio
import logging

from django.conf import settings

from media_engine.worker import MediaWorker

logger = logging.getLogger(__name__)

_worker: MediaWorker | None = None
_task: asyncio.Task | None = None
_loop: asyncio.AbstractEventLoop | None = None


def ensure_started() -> MediaWorker | None:
    """Start the in-process media worker once (call it from async code on daphne's loop).

    Returns the worker, or ``None`` when the media engine runs in its own processes
    (``MEDIA_ENGINE_IN_PROCESS`` off). Safe to call on every connect: later calls return the
    running worker; a worker whose task ended (or that belonged to another, closed event
    loop) is replaced.
    """
    global _worker, _task, _loop
    if not settings.MEDIA_ENGINE_IN_PROCESS:
        return None
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            "media_engine.embedded.ensure_started() must be called from async code on the "
            "server's event loop (e.g. an async consumer's connect or receive)"
        ) from None
    if _worker is not None and _loop is loop and _task is not None and not _task.done():
        return _worker
    _worker = MediaWorker()
    _loop = loop
    _task = loop.create_task(_worker.run(), name="media-engine-embedded")
    _task.add_done_callback(_log_exit)
    logger.info("embedded media worker %s started", _worker.name)
    return _worker


def _log_exit(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("embedded media worker failed", exc_info=task.exception())


async def stop() -> None:
    """End the in-process worker's sessions and the worker (tests, shutdown)."""
    global _worker, _task, _loop
    worker, task = _worker, _task
    _worker = _task = _loop = None
    if worker is not None and task is not None and not task.done():
        worker.stop()
        await task
