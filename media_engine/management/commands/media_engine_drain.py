"""``python manage.py media_engine_drain NAME``: drain a media worker before an upgrade.

The worker (or every worker with ``--all``) takes no new offer, lets its calls finish and
then exits; its service manager starts the new version. ``kill -USR1 <pid>`` on the worker's
host does the same for one process.
"""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.management.base import BaseCommand, CommandError

from media_engine import protocol


class Command(BaseCommand):
    help = "Drain media workers: no new offers, stop once their calls have ended."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", nargs="?", help="the worker's name (see the dashboard)")
        parser.add_argument("--all", action="store_true", help="drain every media worker")

    def handle(self, *args, name: str | None = None, all: bool = False, **options) -> None:
        if bool(name) == bool(all):
            raise CommandError("name one worker, or give --all")
        target = "*" if all else name
        layer = get_channel_layer()
        async_to_sync(layer.group_send)(
            protocol.CONTROL_GROUP, {"type": "worker.drain", "worker": target}
        )
        self.stdout.write(f"drain sent to {'every worker' if all else name}")
