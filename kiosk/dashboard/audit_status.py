"""The audit chain's state as the dashboard shows it: head, last verified checkpoint.

A checkpoint is written (Celery beat, consent.write_checkpoint) only after the rows added
since the previous one were walked and verified, and it is signed with a key the database
never sees; so the newest checkpoint is the chain's last verification. Its signature is
checked again here, cheaply; a full walk is ``manage.py audit_verify``.
"""

from __future__ import annotations

from typing import Any

from consent import chain
from consent.models import AuditChainHead, AuditCheckpoint
from consent.verification import checkpoint_key


def chain_status() -> dict[str, Any]:
    head = AuditChainHead.objects.filter(pk=1).first()
    head_seq = head.seq if head else 0
    checkpoint = AuditCheckpoint.objects.order_by("-seq").first()
    status: dict[str, Any] = {"head_seq": head_seq, "checkpoint": None}
    if checkpoint is not None:
        payload = chain.checkpoint_payload(checkpoint.seq, checkpoint.hash, checkpoint.created_at)
        status["checkpoint"] = {
            "seq": checkpoint.seq,
            "at": checkpoint.created_at,
            "signature_valid": chain.signature_valid(
                checkpoint_key(), payload, checkpoint.signature
            ),
            "events_since": max(head_seq - checkpoint.seq, 0),
        }
    return status
