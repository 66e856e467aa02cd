"""The live page's socket: staff only; forwards the media workers' per-session stats.

Workers publish ``session.stats``, ``session.ended`` and ``worker.heartbeat`` to
STATS_GROUP; a switch change is announced on CONTROL_GROUP. This consumer listens to both
and passes them on to the page, which keeps the last minutes of numbers and draws the charts
and the workers' load with each heartbeat's age. The portal announces every change of a call
on ``kiosk.portal.notify.CALLS_GROUP``; the consumer then re-reads the calls table from the
database and sends it whole (``calls``), also once right after connecting.
"""

import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from kiosk.dashboard.roles import VIEW_DASHBOARD
from kiosk.dashboard.second_factor import needs_second_factor, session_verified
from kiosk.portal.notify import CALLS_GROUP
from kiosk.portal.selectors import live_call_rows
from media_engine.protocol import CONTROL_GROUP, STATS_GROUP

FORBIDDEN = 4403
log = logging.getLogger(__name__)


class LiveSessionsConsumer(AsyncJsonWebsocketConsumer):
    groups_joined: tuple[str, ...] = ()
    can_watch = False

    async def connect(self) -> None:
        user = self.scope.get("user")
        allowed = (
            user is not None
            and user.is_authenticated
            and await database_sync_to_async(self._may_watch)(user)
        )
        if not allowed:
            await self.close(code=FORBIDDEN)
            return
        for group in (STATS_GROUP, CONTROL_GROUP, CALLS_GROUP):
            await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined = (STATS_GROUP, CONTROL_GROUP, CALLS_GROUP)
        await self.accept()
        await self.portal_calls_changed({})

    def _may_watch(self, user) -> bool:
        """The dashboard permission, and the second factor where the user needs one."""
        if not user.has_perm(VIEW_DASHBOARD):
            return False
        session = self.scope.get("session")
        allowed = not needs_second_factor(user) or session_verified(user, session)
        self.can_watch = allowed and user.has_perm("portal.supervise_calls")
        return allowed

    async def disconnect(self, code: int) -> None:
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def dispatch(self, message: dict) -> None:
        """A message type this page does not know (the groups are shared with the media
        workers, whose protocol may grow) is ignored instead of closing the socket."""
        try:
            await super().dispatch(message)
        except ValueError as exc:
            if "No handler for message type" not in str(exc):
                raise
            log.debug("live page ignores %r", message.get("type"))

    async def receive_json(self, content, **kwargs) -> None:
        """The page only listens."""

    async def session_stats(self, event: dict) -> None:
        await self.send_json(
            {
                "type": "stats",
                "session_id": event.get("session_id"),
                "kiosk": event.get("kiosk"),
                "worker": event.get("worker"),
                "stats": event.get("stats") or {},
            }
        )

    async def session_ended(self, event: dict) -> None:
        await self.send_json(
            {
                "type": "ended",
                "session_id": event.get("session_id"),
                "kiosk": event.get("kiosk"),
                "reason": event.get("reason"),
            }
        )

    async def worker_heartbeat(self, event: dict) -> None:
        """A media worker's load (media_engine/capacity.py); the page shows its age."""
        fields = (
            "worker", "sessions", "max_sessions", "frame_ms", "cpu", "load", "headroom",
            "accepting", "draining", "sent_at",
        )  # fmt: skip
        await self.send_json({"type": "worker", **{k: event.get(k) for k in fields}})

    async def fusion_switch(self, event: dict) -> None:
        await self.send_json({"type": "switch", "kiosk": event.get("kiosk")})

    async def portal_calls_changed(self, event: dict) -> None:
        """A portal call changed: the whole calls table, read again from the database."""
        rows = await database_sync_to_async(live_call_rows)(self.can_watch)
        await self.send_json({"type": "calls", "calls": rows})

    async def sessions_end(self, event: dict) -> None:
        """An operator ended sessions; the workers report each as ``session.ended``."""
