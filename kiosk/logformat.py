"""Structured logs: one JSON object per line (``KIOSK_LOG_FORMAT=json``).

Each line has ``ts``, ``level``, ``logger``, ``message``, the process kind and, where the line
belongs to a visit, ``session_id``: from the log call's ``extra`` or from the
``current_session`` context variable, which the media worker sets for the tasks of a session
and the signaling consumer for its visit. Only the formatted message is written, never the
arguments' objects: frames and landmarks never reach a log (media events take plain values
only, see media_engine/events.py).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import time

current_session: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_session", default=None
)
MAX_MESSAGE_CHARS = 4000


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "process": os.environ.get("KIOSK_PROCESS_KIND", ""),
            "message": record.getMessage()[:MAX_MESSAGE_CHARS],
        }
        session = getattr(record, "session_id", None) or current_session.get()
        if session:
            data["session_id"] = str(session)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)[:MAX_MESSAGE_CHARS]
        return json.dumps(data, ensure_ascii=False)
