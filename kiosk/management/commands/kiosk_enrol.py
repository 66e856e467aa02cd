"""Enrol a kiosk's device: print a one-time enrolment link (or revoke a device).

    python manage.py kiosk_enrol demo --base-url http://127.0.0.1:8000
    python manage.py kiosk_enrol demo --revoke 3 --reason "tablet lost"

``make run`` runs the first form for the demo kiosk, so that a newcomer opens the printed
link and the kiosk works. Each link works once, within KIOSK_ENROLMENT_TTL_S.
"""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from kiosk import devices, selectors
from kiosk.models import KioskDevice


class Command(BaseCommand):
    help = "Print a one-time enrolment link for a kiosk's device, or revoke a device."

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug", help="the kiosk's slug, e.g. demo")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--revoke", type=int, metavar="DEVICE_ID")
        parser.add_argument("--reason", default="revoked from the command line")

    def handle(self, *args, slug: str, base_url: str, revoke: int | None, reason: str, **_):
        kiosk = selectors.get_kiosk(slug)
        if kiosk is None:
            raise CommandError(f"There is no kiosk named {slug!r}.")
        actor = "system:kiosk_enrol"
        if revoke is not None:
            device = KioskDevice.objects.filter(pk=revoke, kiosk=kiosk).first()
            if device is None:
                raise CommandError(f"Kiosk {slug!r} has no device {revoke}.")
            devices.revoke(device, actor, reason)
            self.stdout.write(f"Device {revoke} of kiosk {slug} is revoked.")
            return
        enrolment = devices.issue_enrolment(kiosk, actor)
        minutes = (enrolment.expires_at - timezone.now()).total_seconds() / 60
        self.stdout.write(
            f"Enrol this device as kiosk {slug!r}: open, once, within {minutes:.0f} minutes:\n"
            f"  {base_url.rstrip('/')}{enrolment.path()}"
        )
