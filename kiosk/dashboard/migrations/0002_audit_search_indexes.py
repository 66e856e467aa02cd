"""Indexes for the dashboard's audit search (dashboard/audit_search.py).

Each filter of the search has a B-tree index that starts with it and continues with
(occurred_at, seq), the keyset order of the pages, so that a page of a filtered search
reads only the rows it shows, however large the table grows. The kiosk filter reads
``details->>'kiosk'`` (an expression index). Created here, beside the search that needs
them, without changing the audit trail's model; they are plain indexes (no effect on the
append-only triggers or the hash chain).
"""

from django.db import migrations

INDEXES = {
    "audit_search_time": "(occurred_at, seq)",
    "audit_search_actor": "(actor, occurred_at, seq)",
    "audit_search_action": "(action, occurred_at, seq)",
    "audit_search_session": "(session_id, occurred_at, seq)",
}
KIOSK_INDEX = {
    "postgresql": "((details ->> 'kiosk'), occurred_at, seq)",
    "sqlite": "(json_extract(details, '$.\"kiosk\"'), occurred_at, seq)",
}


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    indexes = dict(INDEXES)
    if vendor in KIOSK_INDEX:
        indexes["audit_search_kiosk"] = KIOSK_INDEX[vendor]
    for name, columns in indexes.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON consent_auditevent {columns}"
        )


def drop(apps, schema_editor):
    for name in [*INDEXES, "audit_search_kiosk"]:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0001_roles"),
        ("consent", "0005_audit_append_only"),
    ]

    operations = [migrations.RunPython(create, drop)]
