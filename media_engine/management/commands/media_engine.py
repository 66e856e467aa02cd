"""``python manage.py media_engine``: one media worker process (production; see README)."""

import asyncio
import os
import signal

from django.core.management.base import BaseCommand, CommandError

from consent.models import EndReason
from kiosk import metrics
from media_engine.jitterbuffer import UnsupportedAiortc, require_pinned_aiortc
from media_engine.worker import MediaWorker


class Command(BaseCommand):
    help = (
        "Run a media worker: take kiosk offers from the channel layer while there is room, "
        "run their peer connections and fusion pipeline. Stops cleanly on SIGTERM/SIGINT."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--max-sessions",
            type=int,
            default=None,
            help="sessions this worker takes at once (default: MEDIA_ENGINE_MAX_SESSIONS)",
        )
        parser.add_argument("--name", default=None, help="worker name in stats and answers")
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=None,
            help="serve Prometheus metrics on METRICS_BIND (default 127.0.0.1) at this port "
            "(default: METRICS_PORT; none when unset)",
        )

    def handle(
        self,
        *args,
        max_sessions: int | None = None,
        name: str | None = None,
        metrics_port: int | None = None,
        **options,
    ):
        try:
            require_pinned_aiortc()
        except UnsupportedAiortc as exc:
            raise CommandError(str(exc)) from exc
        if max_sessions is not None and max_sessions < 1:
            raise CommandError("--max-sessions must be at least 1")
        port = metrics_port if metrics_port is not None else _env_port()
        if port:
            metrics.serve(port)
        run_bounded(self._serve(max_sessions, name or os.environ.get("MEDIA_ENGINE_WORKER_NAME")))

    async def _serve(self, max_sessions: int | None, name: str | None) -> None:
        worker = MediaWorker(max_sessions=max_sessions, name=name)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(
                signum,
                worker.stop,
                EndReason.ERROR,
                f"the media worker stopped ({signal.Signals(signum).name})",
            )
        # SIGUSR1: drain (no new offers; stop when the calls have ended), for upgrades.
        loop.add_signal_handler(signal.SIGUSR1, worker.drain)
        self.stdout.write(f"media worker {worker.name} starting")
        await worker.run()
        self.stdout.write(f"media worker {worker.name} stopped")


def _env_port() -> int | None:
    raw = os.environ.get("METRICS_PORT", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise CommandError(f"METRICS_PORT must be a port number, not {raw!r}")
    return int(raw)


def run_bounded(main, stop_timeout_s: float = 5.0) -> None:
    """``asyncio.run`` whose clean-up waits a bounded time: a cancelled channels-redis
    receive can hang for good, and must not keep a stopped worker from exiting."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(main)
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending, timeout=stop_timeout_s))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        asyncio.set_event_loop(None)
        loop.close()
