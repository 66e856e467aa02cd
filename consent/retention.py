"""Retention by policy: old audit rows go, the chain stays verifiable.

Audit events are kept ``AUDIT_RETENTION_DAYS`` (at least 183, about 6 months). Removing
them is a prefix cut: the rows before the first row still inside the period. Before the
cut the removed part is verified, then a signed anchor is appended that says where the
chain now begins and which hash its first row continues; only then does PostgreSQL's
guarded ``consent_audit_prune`` delete the rows below that anchor (the trigger refuses
every other deletion). Consent proofs are kept ``CONSENT_PROOF_RETENTION_DAYS`` (at least
1096, 3 years) by consent.proofs' own retention.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from consent import audit, chain
from consent.audit import store
from consent.audit_models import AuditAnchor, AuditChainHead, AuditEvent
from consent.verification import ChainBroken, _rows, chain_start, checkpoint_key

MIN_AUDIT_DAYS = 183
MIN_CONSENT_PROOF_DAYS = 1096


@dataclass
class RetentionResult:
    pruned: int = 0
    first_seq: int | None = None
    cutoff: dt.datetime | None = None


def audit_retention_days(days: int | None = None) -> int:
    days = int(settings.AUDIT_RETENTION_DAYS if days is None else days)
    if days < MIN_AUDIT_DAYS:
        raise ValueError(f"AUDIT_RETENTION_DAYS must be at least {MIN_AUDIT_DAYS}, not {days}")
    return days


def prune_audit_trail(
    *, now: dt.datetime | None = None, days: int | None = None
) -> RetentionResult:
    """Remove audit rows recorded before ``now - days`` and anchor the chain's new start."""
    now = now or timezone.now()
    days = audit_retention_days(days)
    cutoff = now - dt.timedelta(days=days)
    result = RetentionResult(cutoff=cutoff)
    with transaction.atomic():
        # Hold the chain's lock: no append runs between the cut and the anchor.
        head = store._lock_head()
        start_seq, start_hash, _ = chain_start()
        keep_from = (
            AuditEvent.objects.filter(seq__gte=start_seq, recorded_at__gte=cutoff)
            .order_by("seq")
            .values_list("seq", flat=True)
            .first()
        )
        if keep_from is None:
            keep_from = head.seq + 1  # everything is older than the period
        if keep_from <= start_seq:
            return result
        walk = chain.verify_rows(
            _rows(start_seq, keep_from - 1), start_seq=start_seq, start_prev_hash=start_hash
        )
        if walk.first_break is not None or walk.last_seq != keep_from - 1:
            raise ChainBroken(
                f"retention refused, the part to remove does not verify: "
                f"{walk.first_break or 'rows missing'}"
            )
        payload = chain.anchor_payload(keep_from, walk.last_hash, cutoff, now)
        AuditAnchor.objects.create(
            first_seq=keep_from,
            prev_hash=walk.last_hash,
            pruned_before=cutoff,
            pruned_rows=walk.rows,
            created_at=now,
            signature=chain.sign(checkpoint_key(), payload),
        )
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT consent_audit_prune(%s)", [keep_from])
                result.pruned = cursor.fetchone()[0]
        else:
            result.pruned, _ = AuditEvent.objects.filter(seq__lt=keep_from).delete()
        if head.seq < keep_from - 1:  # pragma: no cover - head is always the last row
            AuditChainHead.objects.filter(pk=1).update(seq=keep_from - 1, hash=walk.last_hash)
        result.first_seq = keep_from
        audit.record_event(
            "system:retention",
            "audit.retention_applied",
            "audit",
            details={
                "pruned_rows": result.pruned,
                "chain_starts_at": keep_from,
                "cutoff": chain.canonical_time(cutoff),
                "days": days,
            },
        )
    return result


def consent_proof_retention_days(days: int | None = None) -> int:
    days = int(settings.CONSENT_PROOF_RETENTION_DAYS if days is None else days)
    if days < MIN_CONSENT_PROOF_DAYS:
        raise ValueError(
            f"CONSENT_PROOF_RETENTION_DAYS must be at least {MIN_CONSENT_PROOF_DAYS}, not {days}"
        )
    return days


def prune_consent_proofs(*, now: dt.datetime | None = None, days: int | None = None) -> dict:
    """Remove consent records whose session ended (or identity consent lapsed or was revoked)
    more than ``days`` ago, with the sessions they belong to; recorded as one audit event."""
    from consent.models import ConsentGrant, IdentityConsent, KioskSession

    now = now or timezone.now()
    days = consent_proof_retention_days(days)
    cutoff = now - dt.timedelta(days=days)
    with transaction.atomic():
        old_sessions = KioskSession.objects.filter(ended_at__lt=cutoff)
        _, removed = ConsentGrant.objects.filter(session__in=old_sessions).delete()
        grants = removed.get(ConsentGrant._meta.label, 0)
        _, removed = old_sessions.delete()
        sessions = removed.get(KioskSession._meta.label, 0)
        _, removed = IdentityConsent.objects.filter(
            models.Q(revoked_at__lt=cutoff) | models.Q(valid_until__lt=cutoff)
        ).delete()
        identity_consents = removed.get(IdentityConsent._meta.label, 0)
        counts = {
            "grants": grants,
            "sessions": sessions,
            "identity_consents": identity_consents,
        }
        if any(counts.values()):
            audit.record_event(
                "system:retention",
                "consent.retention_applied",
                "consent",
                details={**counts, "cutoff": chain.canonical_time(cutoff), "days": days},
            )
    return counts
