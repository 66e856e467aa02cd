"""``python manage.py audit_verify``: walk the audit chain and check the signed checkpoints.

Exit status 0 when everything verifies, 1 otherwise; the first row that does not verify is
named by its seq and event id.
"""

import json

from django.core.management.base import BaseCommand, CommandError

from consent.verification import verify_chain


class Command(BaseCommand):
    help = "Verify the audit hash chain and its signed checkpoints; name the first bad row."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args, **options):
        report = verify_chain()
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "ok": report.ok,
                        "rows": report.rows,
                        "first_seq": report.first_seq,
                        "last_seq": report.last_seq,
                        "first_bad_seq": report.first_break.seq if report.first_break else None,
                        "first_bad_event": report.first_break_event,
                        "problem": report.first_break.problem if report.first_break else None,
                        "checkpoint_problems": report.problems,
                        "checkpoints_checked": report.checkpoints_checked,
                        "rows_per_s": round(report.rows_per_s),
                    }
                )
            )
        if report.first_break is not None:
            event = f" (event {report.first_break_event})" if report.first_break_event else ""
            raise CommandError(f"audit chain broken at {report.first_break}{event}")
        if report.problems:
            raise CommandError("audit checkpoints do not match: " + "; ".join(report.problems))
        if not options["json"]:
            self.stdout.write(
                self.style.SUCCESS(
                    f"audit chain OK: {report.rows} rows (seq {report.first_seq}.."
                    f"{report.last_seq}), {report.checkpoints_checked} checkpoints, "
                    f"{report.rows_per_s:,.0f} rows/s"
                )
            )
