"""Create a staff account in one role: ``manage.py staff_user alice --role operator``."""

import getpass
import os

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from kiosk.dashboard.roles import ROLES
from kiosk.dashboard.staff import create_staff_user


class Command(BaseCommand):
    help = "Create a dashboard user with the auditor, operator or administrator role."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", choices=ROLES, required=True)

    def handle(self, *args, username: str, role: str, **options):
        password = os.environ.get("STAFF_PASSWORD") or getpass.getpass("Password: ")
        try:
            create_staff_user(username, password, role)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(f"{username}: {role}")
