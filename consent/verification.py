"""Verifying the audit chain and taking signed checkpoints of its head.

:func:`verify_chain` walks every stored row from where the chain begins (genesis, or the
signed retention anchor) and names the first row that does not verify; then it compares
the chain with every signed checkpoint, which catches a tail that was cut off or rewritten
as a whole (recomputed hashes). Checkpoints are kept in a table *and* exported as lines of
a file outside the database (``AUDIT_CHECKPOINT_DIR``), signed with a key from the
environment that the database never sees.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.utils import timezone

from consent import chain, chain_head
from consent.audit_models import CHAIN_ROW_ATTRS, AuditAnchor, AuditCheckpoint, AuditEvent

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoints.jsonl"


def checkpoint_key() -> bytes:
    """The signing key: ``AUDIT_CHECKPOINT_KEY`` (hex or text; from the environment in
    production, generated into the var directory by the embedded default)."""
    raw = settings.AUDIT_CHECKPOINT_KEY
    if not raw:
        raise ImproperlyConfigured("AUDIT_CHECKPOINT_KEY is empty")
    return _as_key(raw)


def checkpoint_dir() -> Path:
    return Path(settings.AUDIT_CHECKPOINT_DIR)


def _as_key(raw: str) -> bytes:
    try:
        return bytes.fromhex(raw)
    except ValueError:
        return raw.encode("utf-8")


def verification_keys() -> list[bytes]:
    """The current key, then the retired ones (``AUDIT_CHECKPOINT_RETIRED_KEYS``, comma
    separated) that still verify what they signed before a rotation; only the current key
    signs."""
    retired = [k.strip() for k in settings.AUDIT_CHECKPOINT_RETIRED_KEYS.split(",") if k.strip()]
    return [checkpoint_key(), *(_as_key(k) for k in retired)]


def _signed_by_one_of(keys: list[bytes], payload: dict, signature: str) -> bool:
    return any(chain.signature_valid(key, payload, signature) for key in keys)


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    created_at: str
    signature: str
    source: str
    kind: str = "checkpoint"  # or "head": the head signed after every batch (chain_head)

    def payload(self) -> dict:
        return {"kind": self.kind, "seq": self.seq, "hash": self.hash, "at": self.created_at}


def exported_head(directory: Path | None = None) -> list[Checkpoint]:
    """The head signed after the last committed batch (``head.json``), if any."""
    head = chain_head.read_head(directory)
    if head is None:
        return []
    return [
        Checkpoint(
            head["seq"], head["hash"], head["at"], head["signature"], chain_head.HEAD_FILE, "head"
        )
    ]


def exported_checkpoints(directory: Path | None = None) -> list[Checkpoint]:
    path = (directory or checkpoint_dir()) / CHECKPOINT_FILE
    found = []
    if not path.exists():
        return found
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line:
                continue
            try:
                data = json.loads(line)
                found.append(
                    Checkpoint(
                        int(data["seq"]),
                        data["hash"],
                        data["at"],
                        data["signature"],
                        f"{path.name}:{number}",
                    )
                )
            except (ValueError, KeyError, TypeError):
                # A torn last line (crash while writing) or garbage: reported by verify.
                found.append(Checkpoint(-1, "", "", "", f"{path.name}:{number} (unreadable)"))
    return found


def stored_checkpoints() -> list[Checkpoint]:
    return [
        Checkpoint(c.seq, c.hash, chain.canonical_time(c.created_at), c.signature, f"table#{c.pk}")
        for c in AuditCheckpoint.objects.order_by("seq")
    ]


def _export(checkpoint: Checkpoint) -> None:
    directory = checkpoint_dir()
    directory.mkdir(parents=True, exist_ok=True)
    line = json.dumps(
        {
            "seq": checkpoint.seq,
            "hash": checkpoint.hash,
            "at": checkpoint.created_at,
            "signature": checkpoint.signature,
        },
        sort_keys=True,
    )
    fd = os.open(directory / CHECKPOINT_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, (line + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


class ChainBroken(RuntimeError):
    """The chain does not verify: no checkpoint or anchor is signed over it."""


def _rows(start_seq: int, end_seq: int | None = None):
    """Chain rows in seq order as dicts, streamed (a server-side cursor on PostgreSQL)."""
    if connection.vendor == "postgresql":
        return _pg_rows(start_seq, end_seq)
    qs = AuditEvent.objects.filter(seq__gte=start_seq)
    if end_seq is not None:
        qs = qs.filter(seq__lte=end_seq)
    return qs.order_by("seq").values(*CHAIN_ROW_ATTRS).iterator(chunk_size=5000)


_PG_TIME = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'  # the same spelling as chain.canonical_time


def _pg_rows(start_seq: int, end_seq: int | None):
    # Straight from psycopg, without the ORM per row: about twice the rows per second.
    # Times come as the canonical UTC text and ids as text: parsing them into Python
    # objects only to print them again was half of the walk's time.
    as_text = {
        "details": "details::text",
        "event_id": "event_id::text",
        "session_id": "session_id::text",
        "occurred_at": f"to_char(occurred_at AT TIME ZONE 'UTC', '{_PG_TIME}')",
        "recorded_at": f"to_char(recorded_at AT TIME ZONE 'UTC', '{_PG_TIME}')",
    }
    columns = ", ".join(as_text.get(c, c) for c in CHAIN_ROW_ATTRS)
    sql = f"SELECT {columns} FROM consent_auditevent WHERE seq >= %s"
    params: list[int] = [start_seq]
    if end_seq is not None:
        sql += " AND seq <= %s"
        params.append(end_seq)
    sql += " ORDER BY seq"
    details_at = CHAIN_ROW_ATTRS.index("details")
    with transaction.atomic(), connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while chunk := cursor.fetchmany(5000):
            for values in chunk:
                row = dict(zip(CHAIN_ROW_ATTRS, values, strict=True))
                row["details"] = json.loads(values[details_at])
                yield row


def chain_start() -> tuple[int, str, AuditAnchor | None]:
    anchor = AuditAnchor.objects.order_by("-first_seq").first()
    if anchor is None:
        return 1, chain.GENESIS_HASH, None
    return anchor.first_seq, anchor.prev_hash, anchor


def anchor_valid(anchor: AuditAnchor, key: bytes | None = None) -> bool:
    payload = chain.anchor_payload(
        anchor.first_seq, anchor.prev_hash, anchor.pruned_before, anchor.created_at
    )
    return chain.signature_valid(key or checkpoint_key(), payload, anchor.signature)


def write_checkpoint() -> AuditCheckpoint | None:
    """Verify the rows added since the last checkpoint and sign the new head.

    Returns None when nothing was added. Raises :class:`ChainBroken` (and signs nothing)
    when the new rows do not continue the last checkpoint's chain.
    """
    with transaction.atomic():
        last = AuditCheckpoint.objects.order_by("-seq").first()
        start_seq, start_hash, _ = chain_start()
        if last is not None and last.seq >= start_seq:
            start_seq, start_hash = last.seq + 1, last.hash
        head = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
        if head is None or head < start_seq:
            return None
        walk = chain.verify_rows(
            _rows(start_seq, head), start_seq=start_seq, start_prev_hash=start_hash
        )
        if walk.first_break is not None:
            raise ChainBroken(f"not signing a checkpoint: {walk.first_break}")
        now = timezone.now()
        payload = chain.checkpoint_payload(walk.last_seq, walk.last_hash, now)
        signature = chain.sign(checkpoint_key(), payload)
        row = AuditCheckpoint.objects.create(
            seq=walk.last_seq, hash=walk.last_hash, created_at=now, signature=signature
        )
    _export(Checkpoint(row.seq, row.hash, payload["at"], signature, "new"))
    return row


@dataclass
class VerifyReport:
    rows: int = 0
    first_seq: int = 1
    last_seq: int = 0
    seconds: float = 0.0
    first_break: chain.ChainBreak | None = None
    first_break_event: str | None = None
    problems: list[str] = field(default_factory=list)
    checkpoints_checked: int = 0

    @property
    def ok(self) -> bool:
        return self.first_break is None and not self.problems

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def verify_chain(*, checkpoints: list[Checkpoint] | None = None) -> VerifyReport:
    """Walk the whole chain, then hold it against every signed checkpoint."""
    keys = verification_keys()
    report = VerifyReport()
    started = time.perf_counter()
    start_seq, start_hash, anchor = chain_start()
    if anchor is not None and not any(anchor_valid(anchor, key) for key in keys):
        report.problems.append(
            f"retention anchor at seq={anchor.first_seq} has a bad signature (forged or changed)"
        )
    if checkpoints is None:
        checkpoints = stored_checkpoints() + exported_checkpoints() + exported_head()
    wanted: dict[int, str | None] = {}
    valid = []
    for cp in checkpoints:
        if cp.seq < 0 or not _signed_by_one_of(keys, cp.payload(), cp.signature):
            report.problems.append(f"checkpoint {cp.source} is unreadable or badly signed")
            continue
        if cp.seq < start_seq:
            continue  # covered by retention: those rows are gone by policy
        valid.append(cp)
        wanted[cp.seq] = None
    walk = chain.verify_rows(
        _rows(start_seq), start_seq=start_seq, start_prev_hash=start_hash, hashes_at=wanted
    )
    report.seconds = time.perf_counter() - started
    report.rows, report.first_seq, report.last_seq = walk.rows, start_seq, walk.last_seq
    report.first_break = walk.first_break
    if walk.first_break is not None:
        event = AuditEvent.objects.filter(seq=walk.first_break.seq).values_list(
            "event_id", flat=True
        )
        report.first_break_event = str(event[0]) if event else None
        return report
    last_good = start_seq - 1
    for cp in sorted(valid, key=lambda c: c.seq):
        report.checkpoints_checked += 1
        if cp.seq > walk.last_seq:
            report.problems.append(
                f"tail truncated: {cp.kind} {cp.source} signed the chain up to seq={cp.seq}, "
                f"but the chain ends at seq={walk.last_seq} "
                f"(rows {walk.last_seq + 1}..{cp.seq} are gone)"
            )
            break
        if wanted.get(cp.seq) != cp.hash:
            report.problems.append(
                f"tail rewritten: row seq={cp.seq} differs from {cp.kind} {cp.source}; "
                f"rows from seq={last_good + 1} on were replaced with a recomputed chain"
            )
            break
        last_good = cp.seq
    return report
