"""The audit hash chain: canonical encoding, row hashes, signatures and the verify walk.

Pure functions, no database: ``consent.audit`` writes rows with these hashes and
``consent.verification`` feeds rows back through :func:`verify_rows`.

A row's hash is ``sha256(canonical(row))`` where the canonical encoding is compact JSON
with sorted keys over every field that matters, including ``seq`` (the row's position,
contiguous from 1) and ``prev_hash`` (the previous row's hash; ``GENESIS_HASH`` for the
first row ever). Changing any field breaks that row's hash; deleting a row leaves a gap
in ``seq`` and a ``prev_hash`` that no longer matches. A rewrite of the whole tail from
some row on keeps the chain internally consistent and is caught by the signed
checkpoints instead (:func:`sign_checkpoint`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS_HASH = "0" * 64
ENCODING_VERSION = 1
# Fields of a chain row, in the order they are hashed (the JSON keys are sorted anyway).
ROW_FIELDS = (
    "seq",
    "event_id",
    "occurred_at",
    "recorded_at",
    "actor_kind",
    "actor",
    "action",
    "target",
    "session_id",
    "details",
    "prev_hash",
)
# The columns of a stored row: the hashed fields and the row's own hash.
STORED_FIELDS = (*ROW_FIELDS, "hash")


def canonical_time(value: dt.datetime | str) -> str:
    """UTC, microseconds, always the same spelling (the database keeps microseconds).

    A string is taken as already canonical (the verify walk asks PostgreSQL for it)."""
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def canonical_row(row: Mapping[str, Any]) -> bytes:
    """The exact bytes that are hashed for one row."""
    session_id = row["session_id"]
    return canonical_json(
        {
            "v": ENCODING_VERSION,
            "seq": int(row["seq"]),
            "event_id": str(row["event_id"]),
            "occurred_at": canonical_time(row["occurred_at"]),
            "recorded_at": canonical_time(row["recorded_at"]),
            "actor_kind": row["actor_kind"],
            "actor": row["actor"],
            "action": row["action"],
            "target": row["target"],
            "session_id": str(session_id) if session_id is not None else None,
            "details": row["details"],
            "prev_hash": row["prev_hash"],
        }
    )


def row_hash(row: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_row(row)).hexdigest()


def sign(key: bytes, payload: Mapping[str, Any]) -> str:
    """HMAC-SHA256 of the canonical JSON of ``payload`` (checkpoints and anchors)."""
    return hmac.new(key, canonical_json(dict(payload)), hashlib.sha256).hexdigest()


def signature_valid(key: bytes, payload: Mapping[str, Any], signature: str) -> bool:
    return hmac.compare_digest(sign(key, payload), signature)


def checkpoint_payload(seq: int, head_hash: str, created_at: dt.datetime) -> dict[str, Any]:
    return {"kind": "checkpoint", "seq": seq, "hash": head_hash, "at": canonical_time(created_at)}


def head_payload(seq: int, head_hash: str, created_at: dt.datetime | str) -> dict[str, Any]:
    """What is signed for the chain's head after every committed batch (consent.chain_head)."""
    return {"kind": "head", "seq": seq, "hash": head_hash, "at": canonical_time(created_at)}


def anchor_payload(
    first_seq: int, prev_hash: str, pruned_before: dt.datetime, created_at: dt.datetime
) -> dict[str, Any]:
    return {
        "kind": "anchor",
        "first_seq": first_seq,
        "prev_hash": prev_hash,
        "pruned_before": canonical_time(pruned_before),
        "at": canonical_time(created_at),
    }


@dataclass(frozen=True)
class ChainBreak:
    """The first row that does not verify, and why."""

    seq: int
    problem: str

    def __str__(self) -> str:
        return f"row seq={self.seq}: {self.problem}"


@dataclass
class WalkResult:
    rows: int = 0
    last_seq: int = 0
    last_hash: str = GENESIS_HASH
    first_break: ChainBreak | None = None


def verify_rows(
    rows: Iterable[Mapping[str, Any]],
    *,
    start_seq: int = 1,
    start_prev_hash: str = GENESIS_HASH,
    hashes_at: dict[int, str | None] | None = None,
) -> WalkResult:
    """Walk rows in ``seq`` order and stop at the first that does not verify.

    ``start_seq``/``start_prev_hash`` say where the chain must begin (1 and the genesis
    hash, or the retention anchor's values after old rows went). A missing row is named by
    its own ``seq`` (the gap), a changed row by its ``seq``. ``hashes_at`` (seq -> hash)
    is filled for the seqs it already contains as keys, so that checkpoints can be
    compared during the same walk.
    """
    result = WalkResult(last_seq=start_seq - 1, last_hash=start_prev_hash)
    expected_seq, prev = start_seq, start_prev_hash
    for row in rows:
        seq = int(row["seq"])
        if seq != expected_seq:
            if seq > expected_seq:
                missing = (
                    f"missing (rows {expected_seq}..{seq - 1} are gone)"
                    if seq - expected_seq > 1
                    else "missing (deleted)"
                )
                result.first_break = ChainBreak(expected_seq, missing)
            else:
                result.first_break = ChainBreak(seq, f"out of order (expected {expected_seq})")
            return result
        if row["prev_hash"] != prev:
            result.first_break = ChainBreak(seq, "prev_hash does not match the previous row's hash")
            return result
        computed = row_hash(row)
        if computed != row["hash"]:
            result.first_break = ChainBreak(seq, "content changed (hash does not match)")
            return result
        if hashes_at is not None and seq in hashes_at:
            hashes_at[seq] = computed
        prev = computed
        result.rows += 1
        result.last_seq, result.last_hash = seq, computed
        expected_seq += 1
    return result
