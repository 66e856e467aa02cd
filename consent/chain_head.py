"""The signed head of the audit chain, written outside the database after every batch.

Checkpoints (``consent.verification``) are taken every few minutes; rows appended since the
last one could be deleted without a trace. So every committed batch also signs the chain's
new head (seq and hash; an HMAC costs microseconds) and writes it to ``head.json`` in the
checkpoint store (``AUDIT_CHECKPOINT_DIR``, other storage than the database). Deleting even
the newest row then leaves the chain shorter than the signed head, which ``audit_verify``
reports.

Writers in several processes (Celery workers, daphne) take an exclusive lock on
``head.lock`` and only ever move the head forward, so a late writer of an older batch never
replaces a newer head. The file is replaced atomically (write, fsync, rename).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from consent import chain

log = logging.getLogger(__name__)

HEAD_FILE = "head.json"
LOCK_FILE = "head.lock"


def head_path(directory: Path | None = None) -> Path:
    return Path(directory or settings.AUDIT_CHECKPOINT_DIR) / HEAD_FILE


def read_head(directory: Path | None = None) -> dict | None:
    """The signed head as stored (``None`` when none was written); an unreadable file is
    ``{"seq": -1}`` so that verification reports it."""
    path = head_path(directory)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {
            "seq": int(data["seq"]),
            "hash": str(data["hash"]),
            "at": str(data["at"]),
            "signature": str(data["signature"]),
        }
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return {"seq": -1, "hash": "", "at": "", "signature": ""}


def sign_head(seq: int, head_hash: str, key: bytes) -> None:
    """Sign ``(seq, head_hash)`` and store it unless a newer head is already stored."""
    directory = Path(settings.AUDIT_CHECKPOINT_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    payload = chain.head_payload(seq, head_hash, timezone.now())
    record = {**payload, "signature": chain.sign(key, payload)}
    lock = os.open(directory / LOCK_FILE, os.O_WRONLY | os.O_CREAT, 0o640)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = read_head(directory)
        if current is not None and current["seq"] >= seq:
            return
        _replace(directory / HEAD_FILE, json.dumps(record, sort_keys=True) + "\n")
    finally:
        os.close(lock)  # releases the lock


def _replace(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def sign_head_after_commit(seq: int, head_hash: str) -> None:
    """Sign the head once the batch's transaction committed (a rolled-back batch is never
    signed). A failure to write is logged, never raised: the batch is stored already, and
    the next batch or checkpoint covers it."""
    from django.db import transaction

    from consent.verification import checkpoint_key

    def write() -> None:
        try:
            sign_head(seq, head_hash, checkpoint_key())
        except OSError:
            log.exception("could not write the signed audit head (seq=%d)", seq)

    transaction.on_commit(write)
