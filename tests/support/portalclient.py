"""Portal clients for tests and bench, written from docs/portal.md: the customer's and the
agent's sockets (``websockets``) with real aiortc peers (stamped cameras, tone or click
microphones), and the checks on what each side receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import av
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from websockets.asyncio.client import ClientConnection, connect

from media_engine.jitterbuffer import install_complete_frame_release
from media_engine.paused import paused_frame
from media_engine.rtptime import keep_camera_timestamps, send_camera_timestamps
from tests.support import framestamp
from tests.support.loopclient import StampedCamera
from tests.support.visible_label import carries_label

WAIT_S = 30.0
AUDIO_RATE = 48000
AUDIO_SAMPLES = 960  # 20 ms


class Socket:
    """One portal WebSocket: JSON text frames, every received message kept in ``seen``."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.seen: list[dict[str, Any]] = []
        self.hello: dict[str, Any] = {}

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, base_url: str, path: str, cookie: str = "", device: str = ""
    ) -> AsyncIterator[Socket]:
        """``cookie``: a staff session id; ``device``: a kiosk's device cookie (``name=token``,
        tests/support/enrolment.py ``cookie``)."""
        ws_url = base_url.replace("http://", "ws://", 1) + path
        cookies = [f"sessionid={cookie}"] if cookie else []
        cookies += [device] if device else []
        headers = {"Cookie": "; ".join(cookies)} if cookies else None
        async with connect(
            ws_url, origin=base_url, open_timeout=WAIT_S, additional_headers=headers
        ) as socket:
            client = cls(socket)
            client.hello = await client.expect("hello")
            yield client

    async def send(self, message: dict[str, Any] | str) -> None:
        await self.socket.send(message if isinstance(message, str) else json.dumps(message))

    async def receive(self, wait_s: float = WAIT_S) -> dict[str, Any]:
        message = json.loads(await asyncio.wait_for(self.socket.recv(), wait_s))
        self.seen.append(message)
        return message

    async def expect(self, type_: str, wait_s: float = WAIT_S, **fields: Any) -> dict[str, Any]:
        """The next message of ``type_`` (with ``fields``); other types are skipped, an
        ``error`` fails."""
        deadline = time.monotonic() + wait_s
        while True:
            message = await self.receive(max(0.1, deadline - time.monotonic()))
            if message["type"] == type_ and all(message.get(k) == v for k, v in fields.items()):
                return message
            if message["type"] == "error" and type_ != "error":
                raise AssertionError(f"expected {type_}, got {message}")


class ToneMicrophone(MediaStreamTrack):
    """A paced microphone: a quiet tone, and a loud click at the instants ``clicks_at``
    (seconds from the first frame) so that the bench can find them."""

    kind = "audio"

    def __init__(self, frequency: float = 440.0, clicks_every_s: float | None = None) -> None:
        super().__init__()
        self.frequency = frequency
        self.clicks_every_s = clicks_every_s
        self.count = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        due = self._start + self.count * AUDIO_SAMPLES / AUDIO_RATE
        if due > now:
            await asyncio.sleep(due - now)
        first = self.count * AUDIO_SAMPLES
        t = (first + np.arange(AUDIO_SAMPLES)) / AUDIO_RATE
        samples = 1500 * np.sin(2 * np.pi * self.frequency * t)
        if (
            self.clicks_every_s
            and (first % round(self.clicks_every_s * AUDIO_RATE)) < AUDIO_SAMPLES
        ):
            samples[:240] = 28000 * np.sign(np.sin(2 * np.pi * 1000 * t[:240]))  # 5 ms click
        frame = av.AudioFrame.from_ndarray(
            samples.astype(np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = AUDIO_RATE
        frame.pts = first
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self.count += 1
        return frame


def is_paused_still(bgr: np.ndarray) -> bool:
    still = paused_frame(bgr.shape[1], bgr.shape[0]).astype(np.int16)
    return float(np.abs(bgr.astype(np.int16) - still).mean()) < 12.0


class ReceivedVideo:
    """Reads a received video track: counts frames, labels, and whose camera stamps show."""

    def __init__(self, track: MediaStreamTrack, stamps_of: StampedCamera | None = None) -> None:
        self.frames = 0
        self.labelled = 0
        self.stamped = 0  # frames carrying a readable camera stamp (someone's raw camera)
        self.paused = 0  # frames that are the "service paused" still
        self.arrivals: list[tuple[float, int | None]] = []  # (monotonic, pts)
        self.last_bgr: np.ndarray | None = None
        self._task = asyncio.ensure_future(self._run(track))

    async def _run(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
            while True:
                frame = await track.recv()
                now = time.monotonic()
                bgr = frame.to_ndarray(format="bgr24")
                self.frames += 1
                self.arrivals.append((now, frame.pts))
                self.labelled += carries_label(bgr)
                self.stamped += framestamp.read(bgr) is not None
                self.paused += is_paused_still(bgr)
                self.last_bgr = bgr

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class ReceivedAudio:
    """Reads a received audio track: frames, loud frames, and when clicks arrived."""

    def __init__(self, track: MediaStreamTrack) -> None:
        self.frames = 0
        self.loud = 0
        self.clicks: list[float] = []  # monotonic arrival of each click's first loud frame
        self._was_click = False
        self._task = asyncio.ensure_future(self._run(track))

    async def _run(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
            while True:
                frame = await track.recv()
                now = time.monotonic()
                samples = frame.to_ndarray().astype(np.int32)
                peak = int(np.abs(samples).max()) if samples.size else 0
                self.frames += 1
                self.loud += peak > 500
                click = peak > 12000
                if click and not self._was_click:
                    self.clicks.append(now)
                self._was_click = click

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class Peer:
    """An aiortc peer for one party: a stamped camera and a tone microphone, the received
    video(s) and audio noted."""

    def __init__(self, camera: StampedCamera, microphone: ToneMicrophone, previews: int = 0):
        self.pc = RTCPeerConnection()
        self.camera, self.microphone = camera, microphone
        self.videos: list[ReceivedVideo] = []
        self.audio: ReceivedAudio | None = None
        video_sender = self.pc.addTrack(camera)
        send_camera_timestamps(video_sender)
        self.pc.addTrack(microphone)
        for _ in range(previews):
            self.pc.addTransceiver("video", direction="recvonly")
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "video":
            self.videos.append(ReceivedVideo(track))
        else:
            self.audio = ReceivedAudio(track)

    async def offer(self) -> str:
        from media_engine.ice import offer_loopback_candidates

        offer_loopback_candidates()
        await self.pc.setLocalDescription(await self.pc.createOffer())
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "video":
                install_complete_frame_release(transceiver.receiver)
                keep_camera_timestamps(transceiver.receiver)
        return self.pc.localDescription.sdp

    async def accept(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    async def close(self) -> None:
        for reader in [*self.videos, *([self.audio] if self.audio else [])]:
            await reader.stop()
        await self.pc.close()


class PreviewPeer:
    """The agent's receive-only preview peer (their own digital human)."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection()
        self.pc.addTransceiver("video", direction="recvonly")
        self.video: ReceivedVideo | None = None
        self.pc.on("track", lambda track: setattr(self, "video", ReceivedVideo(track)))

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def accept(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    async def close(self) -> None:
        if self.video is not None:
            await self.video.stop()
        await self.pc.close()


async def wait_until(predicate, within: float = WAIT_S, what: str = "") -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.1)
