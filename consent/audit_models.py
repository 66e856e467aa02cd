"""The audit trail's tables (imported by consent.models so Django finds them).

- ``AuditEvent``: the append-only, hash-chained log. PostgreSQL refuses UPDATE, DELETE and
  TRUNCATE on it (migration 0005); the only deletion allowed is retention's, of rows
  below a signed anchor.
- ``AuditOutbox``: events written in the caller's transaction, relayed into the log by
  Celery and deleted in the same transaction that appends them.
- ``AuditChainHead``: one row (pk=1) holding the last seq and hash; appenders lock it, so
  the chain never forks.
- ``AuditCheckpoint``: HMAC-signed copies of the chain head, taken periodically and also
  exported as files, so that a rewritten or truncated tail is caught.
- ``AuditAnchor``: HMAC-signed record of where the chain begins after retention removed
  older rows.
"""

import uuid

from django.db import models

from consent.chain import STORED_FIELDS


class ActorKind(models.TextChoices):
    USER = "user", "Operator user"
    KIOSK = "kiosk", "Kiosk"
    SYSTEM = "system", "System"


class AuditEvent(models.Model):
    seq = models.BigIntegerField(primary_key=True, editable=False)
    event_id = models.UUIDField(unique=True, editable=False)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField()
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    actor = models.CharField(max_length=200)
    action = models.CharField(max_length=64, db_index=True)
    target = models.CharField(max_length=200, blank=True)
    session_id = models.UUIDField(null=True, blank=True, db_index=True)
    details = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["seq"]
        indexes = [models.Index(fields=["occurred_at"])]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} by {self.actor_kind}:{self.actor}"

    def save(self, *args, **kwargs):
        raise TypeError("audit events are appended only through consent.audit.append_events")

    def delete(self, *args, **kwargs):
        raise TypeError("audit events cannot be deleted (retention has its own path)")

    def as_chain_row(self) -> dict:
        return {f: getattr(self, f) for f in CHAIN_ROW_ATTRS}


CHAIN_ROW_ATTRS = STORED_FIELDS


class AuditOutbox(models.Model):
    event_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    occurred_at = models.DateTimeField()
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    actor = models.CharField(max_length=200)
    action = models.CharField(max_length=64)
    target = models.CharField(max_length=200, blank=True)
    session_id = models.UUIDField(null=True, blank=True)
    details = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name_plural = "audit outbox"

    def __str__(self) -> str:
        return f"pending {self.action} ({self.event_id})"


class AuditChainHead(models.Model):
    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"chain head #{self.seq}"


class AuditCheckpoint(models.Model):
    seq = models.BigIntegerField()
    hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    signature = models.CharField(max_length=64)

    class Meta:
        ordering = ["-seq"]

    def __str__(self) -> str:
        return f"checkpoint #{self.seq}"


class AuditAnchor(models.Model):
    first_seq = models.BigIntegerField(unique=True)
    prev_hash = models.CharField(max_length=64)
    pruned_before = models.DateTimeField()
    pruned_rows = models.BigIntegerField(default=0)
    created_at = models.DateTimeField()
    signature = models.CharField(max_length=64)

    class Meta:
        ordering = ["-first_seq"]

    def __str__(self) -> str:
        return f"chain starts at #{self.first_seq}"
