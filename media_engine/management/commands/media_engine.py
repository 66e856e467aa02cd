"""``python manage.py media_engine``: one media worker process (production; see README)."""

import asyncio
import signal

from django.core.management.base import BaseCommand, CommandError

from consent.models import EndReason
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

    def handle(self, *args, max_sessions: int | None = None, name: str | None = None, **options):
        try:
            require_pinned_aiortc()
        except UnsupportedAiortc as exc:
            raise CommandError(str(exc)) from exc
        if max_sessions is not None and max_sessions < 1:
            raise CommandError("--max-sessions must be at least 1")
        asyncio.run(self._serve(max_sessions, name))

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
        self.stdout.write(f"media worker {worker.name} starting")
        await worker.run()
        self.stdout.write(f"media worker {worker.name} stopped")
