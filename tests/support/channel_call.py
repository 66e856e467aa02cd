"""A kiosk call that speaks to the media workers through the channel layer directly.

This is what the signaling consumer does on the server side (``media_engine/protocol.py``),
without the WebSocket: send ``media.offer`` to the offers channel with our own reply channel,
take ``media.answer``/``media.refused``, then talk to the worker's control channel.
"""

import asyncio
import time
import uuid
from typing import Any

from media_engine import protocol
from tests.support.loopclient import KioskPeer

CLOSE = "test.close"


class ChannelCall:
    def __init__(
        self, layer: Any, kiosk: str, *, engine: str = "label", identity_id: int | None = None
    ) -> None:
        self.layer = layer
        self.kiosk = kiosk
        self.engine = engine
        self.identity_id = identity_id
        self.session_id = str(uuid.uuid4())
        self.peer: KioskPeer | None = None
        self.reply_channel: str | None = None
        self.answer: dict | None = None
        self.messages: list[dict] = []
        self._arrived = asyncio.Event()
        self._reader: asyncio.Future | None = None

    async def send_offer(
        self, sdp: str | None = None, *, deadline_s: float = protocol.OFFER_TIMEOUT_S, **extra
    ) -> None:
        """Send ``media.offer`` (from a new ``KioskPeer`` unless ``sdp`` is given)."""
        if sdp is None:
            self.peer = KioskPeer()
            sdp = await self.peer.offer()
        self.reply_channel = await self.layer.new_channel()
        self._reader = asyncio.ensure_future(self._read())
        message = {
            "type": "media.offer",
            "session_id": self.session_id,
            "kiosk": self.kiosk,
            "engine": self.engine,
            "identity_id": self.identity_id,
            "sdp": sdp,
            "sdp_type": "offer",
            "reply_channel": self.reply_channel,
            "deadline": time.time() + deadline_s,
            "ice_servers": [],
        }
        message.update(extra)
        await self.layer.send(protocol.OFFERS_CHANNEL, message)

    async def _read(self) -> None:
        while True:
            message = await self.layer.receive(self.reply_channel)
            if message.get("type") == CLOSE:
                return
            self.messages.append(message)
            self._arrived.set()

    async def wait_for(self, kind: str, within: float = 30.0, **fields) -> dict:
        """The first message of type ``kind`` (with these field values) from the worker."""
        deadline = time.monotonic() + within
        while True:
            for message in self.messages:
                if message["type"] == kind and all(message.get(k) == v for k, v in fields.items()):
                    return message
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {kind} {fields} in {within} s; got {self.types()}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                pass

    def types(self) -> list[str]:
        return [m["type"] for m in self.messages]

    async def connect(self, within: float = 30.0) -> dict:
        """Wait for the answer and apply it; returns ``media.answer``."""
        deadline = time.monotonic() + within
        while True:
            for message in self.messages:
                if message["type"] == "media.refused":
                    raise AssertionError(f"offer refused: {message}")
                if message["type"] == "media.answer":
                    self.answer = message
                    assert self.peer is not None
                    await self.peer.accept(message["sdp"])
                    return message
            if time.monotonic() > deadline:
                raise TimeoutError(f"no answer in {within} s; got {self.types()}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), 0.5)
            except TimeoutError:
                pass

    async def control(self, kind: str, **fields) -> None:
        assert self.answer is not None, "no worker yet"
        await self.layer.send(
            self.answer["control_channel"],
            {"type": kind, "session_id": self.session_id, **fields},
        )

    async def wait_frames(self, count: int, within: float = 30.0, *, stamped: bool = True) -> None:
        """Until ``count`` more frames (stamped ones, or paused ones) have come back."""
        assert self.peer is not None
        deadline = time.monotonic() + within
        while self.peer.returned is None:
            if time.monotonic() > deadline:
                raise TimeoutError("no video came back")
            await asyncio.sleep(0.05)
        returned = self.peer.returned
        start = returned.stamped if stamped else returned.paused
        while (returned.stamped if stamped else returned.paused) - start < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"{count} {'stamped' if stamped else 'paused'} frames did not come back in "
                    f"{within} s (frames {returned.frames}, stamped {returned.stamped}, "
                    f"paused {returned.paused})"
                )
            returned.changed.clear()
            try:
                await asyncio.wait_for(returned.changed.wait(), left)
            except TimeoutError:
                pass

    async def close(self) -> None:
        if self._reader is not None and not self._reader.done():
            # End the reader with a message rather than by cancelling it: channels-redis can
            # leave a cancelled receive() hanging for good (and with it the loop's shutdown).
            await self.layer.send(self.reply_channel, {"type": CLOSE})
            done, _ = await asyncio.wait([self._reader], timeout=10)
            if not done:
                self._reader.cancel()
        if self.peer is not None:
            await self.peer.close()
