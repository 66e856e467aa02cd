"""A kiosk client written from docs/signaling.md: the WebSocket side of a visit.

``SignalingClient`` speaks the documented JSON protocol over a real WebSocket (the
``websockets`` library); pair it with ``tests.support.loopclient.KioskPeer`` for the media::

    async with SignalingClient.connect(base_url, "demo") as client:
        await client.consent()
        peer = KioskPeer()
        answer = await client.offer(await peer.offer())
        await peer.accept(answer)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from tests.support.enrolment import cookie_headers, enrol_async

WAIT_S = 20.0  # generous: the machine may be loaded
ENROL = "enrol"  # connect()'s default: enrol the kiosk's device first


class SignalingClient:
    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.hello: dict[str, Any] = {}
        self.session_id = ""
        self.seen: list[dict[str, Any]] = []

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls, base_url: str, slug: str, token: str | None = ENROL
    ) -> AsyncIterator[SignalingClient]:
        """Open the kiosk's socket as an enrolled device (a new enrolment unless ``token``
        is given; ``token=None`` connects without any credential)."""
        if token is ENROL:
            token = await enrol_async(slug)
        ws_url = base_url.replace("http://", "ws://", 1) + f"/ws/kiosk/{slug}/"
        headers = cookie_headers(slug, token)
        async with connect(
            ws_url, origin=base_url, open_timeout=WAIT_S, additional_headers=headers
        ) as socket:
            client = cls(socket)
            first = await client.receive()
            if first["type"] == "hello":
                client.hello = first
            yield client

    async def send(self, message: dict[str, Any] | str) -> None:
        await self.socket.send(message if isinstance(message, str) else json.dumps(message))

    async def receive(self, wait_s: float = WAIT_S) -> dict[str, Any]:
        message = json.loads(await asyncio.wait_for(self.socket.recv(), wait_s))
        self.seen.append(message)
        return message

    async def expect(self, type_: str, skip: tuple[str, ...] = (), wait_s: float = WAIT_S):
        """The next message of ``type_``, skipping the types in ``skip`` (e.g. stats)."""
        while True:
            message = await self.receive(wait_s)
            if message["type"] == type_:
                return message
            if message["type"] not in skip:
                raise AssertionError(f"expected {type_}, got {message}")

    async def consent(self, given: bool = True, language: str = "en") -> str:
        await self.send({"type": "consent", "given": given, "language": language})
        self.session_id = (await self.expect("consent_ok"))["session_id"]
        return self.session_id

    async def offer(self, sdp: str) -> str:
        """Send the offer; return the answer's SDP (raises on error/ended instead)."""
        await self.send({"type": "offer", "sdp": sdp, "sdp_type": "offer"})
        while True:
            message = await self.receive()
            if message["type"] == "answer":
                return message["sdp"]
            if message["type"] in ("error", "ended"):
                raise CallRefused(message)

    async def bye(self) -> None:
        await self.send({"type": "bye"})


class CallRefused(Exception):
    def __init__(self, message: dict[str, Any]) -> None:
        super().__init__(json.dumps(message))
        self.message = message
