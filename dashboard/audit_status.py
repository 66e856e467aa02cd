"""The audit chain's state as the dashboard shows it: head, last checkpoint, last verify."""

from __future__ import annotations

from typing import Any


def chain_status() -> dict[str, Any]:
    from consent.models import AuditChainHead, AuditCheckpoint

    head = AuditChainHead.objects.filter(pk=1).first()
    checkpoint = AuditCheckpoint.objects.order_by("-seq").first()
    return {
        "head_seq": head.seq if head else 0,
        "head_hash": head.hash if head else "",
        "checkpoint": checkpoint,
    }
