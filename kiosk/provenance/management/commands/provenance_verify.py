"""``python manage.py provenance_verify FILE...``: one JSON answer per file, one per line.

Run on the server by whoever administers it, so the session id is shown; each file is an
audit event (actor ``system:provenance_verify``). Unreadable files get an error line and
exit status 1; the other files are still verified.
"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from kiosk.provenance.services import verify_media
from media_engine.provenance.verify import UnreadableMedia

ACTOR = "system:provenance_verify"


class Command(BaseCommand):
    help = "Verify the provenance mark in pictures or video clips (JSON per file)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", type=Path)

    def handle(self, *args, files: list[Path], **options) -> None:
        failed = 0
        for path in files:
            try:
                data = path.read_bytes()
                answer = verify_media(data, actor=ACTOR, name=path.name)
            except (OSError, UnreadableMedia) as exc:
                failed += 1
                answer = {"file": str(path), "error": str(exc)}
                self.stderr.write(json.dumps(answer))
                continue
            self.stdout.write(json.dumps({"file": str(path), **answer}))
        if failed:
            raise CommandError(f"{failed} of {len(files)} files could not be verified")
