"""The audit search's kiosk filter also matches events whose target is the kiosk
(``kiosk:<slug>``, as the consent and session events are written), so it gets an index on
(target, occurred_at, seq). ``audit_search_time`` goes: the audit trail's own index on
``occurred_at`` already serves the unfiltered and time-range pages (PostgreSQL reads it
backwards and breaks ties on ``seq`` with an incremental sort of a page's few rows;
bench/audit_search.py prints the plans), and every index costs the trail's appends."""

from django.db import migrations


def forward(apps, schema_editor):
    schema_editor.execute("DROP INDEX IF EXISTS audit_search_time")
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS audit_search_target "
        "ON consent_auditevent (target, occurred_at, seq)"
    )


def backward(apps, schema_editor):
    schema_editor.execute("DROP INDEX IF EXISTS audit_search_target")
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS audit_search_time ON consent_auditevent (occurred_at, seq)"
    )


class Migration(migrations.Migration):
    dependencies = [("dashboard", "0002_audit_search_indexes")]

    operations = [migrations.RunPython(forward, backward)]
