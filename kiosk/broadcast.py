"""Messages to every media worker (``media_engine.protocol.CONTROL_GROUP``) from sync code.

``to_workers_after_commit`` is the one way a write announces itself: the message goes once
the transaction commits (never for a rolled-back change), and a channel layer that is down
is logged, never raised (the database row stays the truth; workers re-read the switch, and a
session's own socket or expiry ends it otherwise).
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from media_engine.protocol import CONTROL_GROUP

log = logging.getLogger(__name__)


def to_workers(message: dict) -> bool:
    """Send ``message`` to every media worker now; False when the layer could not."""
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        async_to_sync(layer.group_send)(CONTROL_GROUP, message)
    except Exception:
        log.exception("could not send %s to the media workers", message.get("type"))
        return False
    return True


def to_workers_after_commit(message: dict) -> None:
    """Send ``message`` to every media worker once the current transaction commits
    (callbacks run in the order they were registered)."""
    transaction.on_commit(lambda: to_workers(message), robust=True)
