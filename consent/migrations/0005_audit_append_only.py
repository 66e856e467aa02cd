"""PostgreSQL refuses UPDATE, DELETE and TRUNCATE on the audit tables.

The only deletion allowed is retention's: ``consent_audit_prune(keep_from)`` deletes the
rows below a signed anchor that was appended first (consent.retention). On other
databases (SQLite, the embedded default) this migration does nothing.
"""

from django.db import migrations

PROTECTED = ("consent_auditevent", "consent_auditanchor", "consent_auditcheckpoint")

FORWARD = """
CREATE OR REPLACE FUNCTION consent_audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'consent_auditevent'
     AND current_setting('consent.audit_prune', true) = 'on' THEN
    IF OLD.seq < COALESCE((SELECT max(first_seq) FROM consent_auditanchor), 0) THEN
      RETURN OLD;
    END IF;
  END IF;
  RAISE EXCEPTION 'the audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE OR REPLACE FUNCTION consent_audit_prune(keep_from bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  removed bigint;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM consent_auditanchor WHERE first_seq = keep_from) THEN
    RAISE EXCEPTION 'no retention anchor at seq %: append the anchor first', keep_from;
  END IF;
  PERFORM set_config('consent.audit_prune', 'on', true);
  DELETE FROM consent_auditevent WHERE seq < keep_from;
  GET DIAGNOSTICS removed = ROW_COUNT;
  PERFORM set_config('consent.audit_prune', 'off', true);
  RETURN removed;
END $$;
"""

TRIGGERS = """
CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table}
  FOR EACH ROW EXECUTE FUNCTION consent_audit_refuse();
CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
  FOR EACH STATEMENT EXECUTE FUNCTION consent_audit_refuse();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS {table}_no_change ON {table};
DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FORWARD, params=None)
    for table in PROTECTED:
        schema_editor.execute(TRIGGERS.format(table=table))


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in PROTECTED:
        schema_editor.execute(BACKWARD.format(table=table))
    schema_editor.execute("DROP FUNCTION IF EXISTS consent_audit_prune(bigint)")
    schema_editor.execute("DROP FUNCTION IF EXISTS consent_audit_refuse()")


class Migration(migrations.Migration):
    dependencies = [("consent", "0004_audit_trail")]
    operations = [migrations.RunPython(forward, backward)]
