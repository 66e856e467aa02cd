"""Proof exports: everything recorded about one session or one person, with the hashes that
prove it, and the record of processing for the data-protection officer.

Each export is a plain dict (served as JSON) that the printable page renders as it is. Every
hash in it is recomputed here and marked ``*_matches``: a reader can redo the same sums from
the export alone (sha256 of the text shown; sha256 of the canonical grant record; each audit
row's hash over its canonical encoding, chained by ``prev_hash``; the signed checkpoint).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from consent import chain
from consent.models import (
    AuditCheckpoint,
    AuditEvent,
    AuditOutbox,
    ConsentGrant,
    ConsentText,
    IdentityConsent,
    KioskSession,
    Purpose,
    text_sha256,
)
from consent.services import grant_record, identity_consent_record, record_hash
from consent.verification import chain_start

FORMAT = "kiosk-consent-proof/1"


def _time(value: dt.datetime | None) -> str | None:
    return chain.canonical_time(value) if value else None


def _text(text: ConsentText) -> dict[str, Any]:
    return {
        "purpose": text.purpose,
        "language": text.language,
        "version": text.version,
        "title": text.title,
        "body": text.body,
        "sha256": text.sha256,
        "sha256_matches": text_sha256(text.body) == text.sha256,
    }


def _events(query: Q) -> dict[str, Any]:
    rows = [e.as_chain_row() for e in AuditEvent.objects.filter(query).order_by("seq")]
    events = []
    for row in rows:
        events.append(
            {
                "seq": row["seq"],
                "event_id": str(row["event_id"]),
                "occurred_at": _time(row["occurred_at"]),
                "recorded_at": _time(row["recorded_at"]),
                "actor": f"{row['actor_kind']}:{row['actor']}",
                "action": row["action"],
                "target": row["target"],
                "session_id": str(row["session_id"]) if row["session_id"] else None,
                "details": row["details"],
                "prev_hash": row["prev_hash"],
                "hash": row["hash"],
                "canonical": chain.canonical_row(row).decode("utf-8"),
                "hash_matches": chain.row_hash(row) == row["hash"],
            }
        )
    last_seq = rows[-1]["seq"] if rows else None
    checkpoint = (
        AuditCheckpoint.objects.filter(seq__gte=last_seq).order_by("seq").first()
        if last_seq is not None
        else None
    )
    start_seq, start_hash, anchor = chain_start()
    return {
        "events": events,
        "all_hashes_match": all(e["hash_matches"] for e in events),
        "pending_in_outbox": AuditOutbox.objects.filter(query).count(),
        "checkpoint": {
            "seq": checkpoint.seq,
            "hash": checkpoint.hash,
            "at": _time(checkpoint.created_at),
            "signature": checkpoint.signature,
            "note": "HMAC-SHA256 with the operator's audit key over "
            '{"at","hash","kind":"checkpoint","seq"}; audit_verify checks the rows between',
        }
        if checkpoint
        else None,
        "chain_starts_at": {"seq": start_seq, "prev_hash": start_hash, "anchored": bool(anchor)},
    }


def session_proof(session_id) -> dict[str, Any]:
    """Everything about one kiosk session. Raises KioskSession.DoesNotExist."""
    session = KioskSession.objects.select_related("kiosk", "identity").get(pk=session_id)
    grant = ConsentGrant.objects.filter(session=session).select_related("kiosk").first()
    proof: dict[str, Any] = {
        "format": FORMAT,
        "kind": "session",
        "generated_at": _time(timezone.now()),
        "session": {
            "id": str(session.pk),
            "kiosk": session.kiosk.slug,
            "kiosk_name": session.kiosk.name,
            "mode": session.mode,
            "consent_given": session.consent_given,
            "language": session.consent_language,
            "engine": session.engine,
            "identity": session.identity.name if session.identity else None,
            "started_at": _time(session.started_at),
            "ended_at": _time(session.ended_at),
            "end_reason": session.end_reason,
            "end_detail": session.end_detail,
        },
        "grant": None,
        "texts": [],
        "identity_consents": [],
    }
    if grant is not None:
        record = grant_record(grant)
        proof["grant"] = {
            "record": record,
            "record_hash": grant.record_hash,
            "record_hash_matches": record_hash(record) == grant.record_hash,
            "withdrawn_at": _time(grant.withdrawn_at),
            "withdrawal_method": grant.withdrawal_method,
        }
        proof["texts"] = [_text(t) for t in grant.texts.order_by("purpose", "language")]
    if session.identity is not None:
        proof["identity_consents"] = [
            _identity_consent(c) for c in session.identity.consents.order_by("recorded_at")
        ]
    proof["audit"] = _events(Q(session_id=session.pk))
    return proof


def _identity_consent(consent: IdentityConsent) -> dict[str, Any]:
    record = identity_consent_record(consent)
    return {
        "id": consent.pk,
        "identity": consent.identity.name,
        "record": record,
        "record_hash": consent.record_hash,
        "record_hash_matches": record_hash(record) == consent.record_hash,
        "revoked_at": _time(consent.revoked_at),
        "revoked_by": consent.revoked_by,
        "revocation_reason": consent.revocation_reason,
    }


def person_proof(reference: str) -> dict[str, Any]:
    """Everything about one depicted person: their identity consents (found by document
    reference or exact name), the identities, and every audit event about those."""
    reference = reference.strip()
    if not reference:
        raise ValueError("name the person or the document reference")
    consents = list(
        IdentityConsent.objects.filter(
            Q(document_reference=reference) | Q(person_name=reference)
        ).select_related("identity")
    )
    identity_ids = sorted({c.identity_id for c in consents})
    targets = Q(target__in=[f"consent.identity:{i}" for i in identity_ids])
    return {
        "format": FORMAT,
        "kind": "person",
        "generated_at": _time(timezone.now()),
        "reference": reference,
        "identity_consents": [_identity_consent(c) for c in consents],
        "sessions_rendering_them": KioskSession.objects.filter(
            identity_id__in=identity_ids
        ).count(),
        "audit": _events(targets if identity_ids else Q(pk__in=[])),
    }


def record_of_processing() -> dict[str, Any]:
    """The record of processing activities (GDPR Art. 30 / PIPL Art. 54 style)."""
    now = timezone.now()
    grants = ConsentGrant.objects.aggregate(
        total=Count("pk"), withdrawn=Count("pk", filter=Q(withdrawn_at__isnull=False))
    )
    texts = [
        {"purpose": t.purpose, "language": t.language, "version": t.version, "sha256": t.sha256}
        for t in ConsentText.objects.order_by("purpose", "language", "-version")
    ]
    return {
        "format": "kiosk-record-of-processing/1",
        "generated_at": _time(now),
        "controller": settings.CONSENT_CONTROLLER,
        "activities": [
            {
                "name": "Digital human at the kiosk",
                "purpose": Purpose.FACE_PROCESSING.label,
                "legal_basis": "the visitor's explicit consent on the kiosk screen, "
                "withdrawable at any time; a path without face processing is offered",
                "data_subjects": "visitors at the kiosk who agree",
                "data_categories": [
                    "live camera video of the visitor's face, processed in memory only "
                    "while the session lasts (never stored, never logged)",
                    "face landmarks derived from it, in memory only",
                    "consent record: kiosk, session, texts shown (version, sha256), language, "
                    "time, method, expiry, withdrawal",
                ],
                "recipients": "none; processing on the operator's own servers",
                "transfers": "none",
                "retention": {
                    "video_and_landmarks": "not retained",
                    "consent_records_days": settings.CONSENT_PROOF_RETENTION_DAYS,
                },
            },
            {
                "name": "Presenter's face",
                "purpose": Purpose.PRESENTER_FACE.label,
                "legal_basis": "the depicted person's written consent (identity consent), "
                "valid for a stated period and revocable",
                "data_subjects": "presenters who agreed to appear",
                "data_categories": [
                    "portrait image of the presenter",
                    "identity consent: name, document reference, validity, revocation",
                ],
                "recipients": "visitors of kiosks that show the presenter (on screen)",
                "transfers": "none",
                "retention": {"identity_consents_days": settings.CONSENT_PROOF_RETENTION_DAYS},
            },
            {
                "name": "Audit trail",
                "purpose": "proof of consent and of every operator action",
                "legal_basis": "legal obligation / accountability",
                "data_subjects": "operators, kiosks (no visitor identity is recorded)",
                "data_categories": ["who did what to what, when (hash-chained, append-only)"],
                "recipients": "auditors of the operator",
                "transfers": "none",
                "retention": {"audit_events_days": settings.AUDIT_RETENTION_DAYS},
            },
        ],
        "security_measures": [
            "WebRTC media encrypted in transit (DTLS-SRTP); HTTPS/WSS for signaling",
            "frames and landmarks never written to disk or logs",
            "every fused frame visibly labelled 'AI-generated · AI合成'",
            "audit log append-only in PostgreSQL (triggers), hash-chained, with "
            "HMAC-signed checkpoints exported outside the database",
            "a one-click switch that stops all face fusion (fail closed)",
        ],
        "consent_texts_in_force": texts,
        "statistics": {
            "sessions": KioskSession.objects.count(),
            "sessions_without_digital_human": KioskSession.objects.filter(
                mode="without_digital_human"
            ).count(),
            "grants": grants["total"],
            "grants_withdrawn": grants["withdrawn"],
            "identity_consents_valid": IdentityConsent.objects.filter(
                valid_from__lte=now, valid_until__gt=now, revoked_at__isnull=True
            ).count(),
        },
    }
