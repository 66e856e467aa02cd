"""Announcements on the channel layer, sent once the transaction commits.

``QUEUE_GROUP`` carries ``portal.queue_changed`` to every agent and waiting customer (each
re-reads its own view from the database: the database is the queue, the group only says
"look again"). ``CALLS_GROUP`` carries ``portal.calls_changed`` to the dashboard's live pages
whenever a call joins, is accepted, starts, changes its supervision or ends (each re-reads
the calls table the same way). Single sends reach one party's consumer by its channel name.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)

QUEUE_GROUP = "portal.queue"
CALLS_GROUP = "portal.calls"


def _layer_call(method: str, target: str, message: dict[str, Any]) -> None:
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    try:
        async_to_sync(getattr(layer, method))(target, message)
    except Exception:
        logger.exception("portal: could not send %s to %s", message.get("type"), target)


def send_after_commit(channel: str, message: dict[str, Any]) -> None:
    if channel:
        transaction.on_commit(lambda: _layer_call("send", channel, message), robust=True)


def queue_changed_after_commit(service: str) -> None:
    message = {"type": "portal.queue_changed", "service": service}
    transaction.on_commit(lambda: _layer_call("group_send", QUEUE_GROUP, message), robust=True)


def calls_changed_after_commit() -> None:
    message = {"type": "portal.calls_changed"}
    transaction.on_commit(lambda: _layer_call("group_send", CALLS_GROUP, message), robust=True)
