"""Verifying one upload or file: read it, look for the mark, name the session, audit it."""

import hashlib
from typing import Any

from django.db import transaction

from consent.audit import record_event
from kiosk.provenance.selectors import VERIFY_ACTION, minute_start, session_for
from media_engine.provenance.keys import configured_keys, installation
from media_engine.provenance.verify import Finding, read_pictures, verify_pictures


def _answer(finding: Finding, session_id: str | None, show_session: bool) -> dict[str, Any]:
    minute = None
    if finding.payload is not None:
        minute = minute_start(finding.payload).strftime("%Y-%m-%dT%H:%MZ")
    return {
        "ai_generated": finding.ai_generated,
        "confidence": finding.confidence,
        "installation": installation() if finding.ai_generated else None,
        "session_id": session_id if show_session else None,
        "minute": minute,
    }


def verify_media(
    data: bytes, *, actor: Any, name: str = "", show_session: bool = True
) -> dict[str, Any]:
    """The verification answer for a picture or clip; records the audit event.

    Raises ``UnreadableMedia`` (nothing recorded) when ``data`` is neither."""
    keys = configured_keys()
    finding = verify_pictures(read_pictures(data), keys)
    session = None
    if finding.payload is not None:
        key = next(k for k in keys if k.key_id == finding.key_id)
        session = session_for(finding.payload, key.secret, installation())
    session_id = str(session.id) if session is not None else None
    answer = _answer(finding, session_id, show_session)
    details = {
        "ai_generated": finding.ai_generated,
        "confidence": finding.confidence,
        "key_id": finding.key_id,
        "minute": answer["minute"],
        "pictures_read": finding.frames,
        "pictures_marked": finding.marked_frames,
        "frames_averaged": finding.averaged,
        "frames_agreeing": finding.agreeing,
        "sha256": hashlib.sha256(data).hexdigest(),
        "session_shown": show_session and session_id is not None,
    }
    with transaction.atomic():
        record_event(actor, VERIFY_ACTION, name[:200], session=session, details=details)
    return answer
