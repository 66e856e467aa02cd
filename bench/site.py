"""A whole site for the benches: its own PostgreSQL database, a private Redis, daphne and
media worker processes, and real aiortc kiosks through signaling (docs/signaling.md).

    with bench_site("load", workers=1, worker_env={...}) as site:
        visit = await site.visit("bench-1")    # consent + offer + answer, a KioskPeer
        site.worker_pids()                     # to measure their CPU and memory

The database ``<name>_bench_<what>`` is created and dropped here; nothing else is touched.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fractions
import functools
import os
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))


def psql(server: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def percentile(values: list[float], q: float) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    k = (len(ordered) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return round(ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo), 1)


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def thread_cpu_s(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of a process (its main thread's id is ``pid``)."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            out[int(task.name)] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


class LightReader:
    """The returned video, read cheaply: no conversion to BGR, no stamp reading; each frame's
    RTP timestamp names the camera frame it was made from (the engine keeps it), which gives
    the round trip. With ``skip_decoding`` the frames are not even decoded (their ``pts`` is
    all that is read); a reader that fell behind would make its queue, and the round trip,
    grow without bound, so it reads as fast as frames come."""

    def __init__(self, peer=None, *, track=None, camera=None) -> None:
        """Reads ``peer``'s returned video in place of its test client's reader, or ``track``
        (frames from ``camera``)."""
        if peer is not None:
            peer.returned._task.cancel()  # this reader replaces the test client's
            track = next(t.receiver.track for t in peer.pc.getTransceivers() if t.kind == "video")
            camera = peer.camera
        self.camera = camera
        self.round_trips_ms: list[float] = []
        self.frames = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.last_number: int | None = None
        self._task = asyncio.ensure_future(self._read(track))

    async def _read(self, track) -> None:
        from aiortc.mediastreams import MediaStreamError

        try:
            while True:
                frame = await track.recv()
                now = time.monotonic()
                self.frames += 1
                self.first_at = self.first_at or now
                self.last_at = now
                number = self.camera.number_at(frame.pts) if frame.pts is not None else None
                sent = self.camera.sent_at.get(number) if number is not None else None
                if number is not None:
                    self.last_number = number
                if sent is not None:
                    self.round_trips_ms.append((now - sent) * 1000.0)
        except MediaStreamError:
            pass

    def reset(self) -> None:
        self.round_trips_ms.clear()
        self.frames = 0
        self.first_at = self.last_at = None

    def fps(self) -> float:
        if self.first_at is None or self.last_at is None or self.last_at <= self.first_at:
            return 0.0
        return (self.frames - 1) / (self.last_at - self.first_at)

    def stop(self) -> None:
        self._task.cancel()


CAMERA_CYCLE = 60  # frames drawn and encoded once, then sent over and over (2 s at 30 fps)
CAMERA_BITRATE = 1_000_000


@functools.cache
def pre_encoded_camera(width: int, height: int, fps: float) -> tuple[bytes, ...]:
    """The camera's first ``CAMERA_CYCLE`` frames as VP8 (the first a keyframe, then inter
    frames), encoded once for every kiosk of the bench: sending them costs no encoding, and the
    cycle restarts on its keyframe, so the stream stays decodable."""
    from tests.support.loopclient import StampedCamera

    camera = StampedCamera(width, height, fps)
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.bit_rate = CAMERA_BITRATE
    codec.time_base = fractions.Fraction(1, round(fps))
    codec.gop_size = 3000
    codec.options = {"deadline": "realtime", "cpu-used": "-6", "lag-in-frames": "0"}
    packets = []
    for number in range(CAMERA_CYCLE):
        frame = av.VideoFrame.from_ndarray(camera.frame_bgr(number), format="bgr24")
        frame = frame.reformat(format="yuv420p")
        frame.pts = number
        packets += [bytes(p) for p in codec.encode(frame)]
    packets += [bytes(p) for p in codec.encode(None)]
    if len(packets) != CAMERA_CYCLE:
        raise RuntimeError(f"the camera cycle encoded to {len(packets)} packets")
    return tuple(packets)


def send_pre_encoded(camera) -> None:
    """The camera sends its frames as pre-encoded VP8 packets (aiortc's sender packs a
    ``Packet`` without encoding it), paced and timed as ``StampedCamera.recv`` does: frame
    ``n`` carries the RTP timestamp ``camera.rtp_time(n)`` and ``camera.sent_at``."""
    packets = pre_encoded_camera(camera.width, camera.height, camera.fps)
    time_base = fractions.Fraction(1, 90000)

    async def recv() -> av.Packet:
        number = await camera.next_number()
        packet = av.Packet(packets[number % len(packets)])
        packet.pts, packet.time_base = camera.rtp_time(number), time_base
        camera.sent_at[number % 65536] = time.monotonic()
        return packet

    camera.recv = recv


# Returned VP8 keyframes by size, as their headers say (counted by TimestampOnlyDecoder).
RETURNED_KEYFRAMES: collections.Counter = collections.Counter()


def vp8_keyframe_size(data: bytes) -> tuple[int, int] | None:
    """The (width, height) in a VP8 keyframe's header (RFC 6386 9.1), None for inter frames."""
    if len(data) < 10 or data[0] & 1 or data[3:6] != b"\x9d\x01\x2a":
        return None
    width, height = struct.unpack_from("<HH", data, 6)
    return width & 0x3FFF, height & 0x3FFF


class TimestampOnlyDecoder:
    """A VP8 "decoder" that decodes nothing: each frame becomes a tiny blank ``VideoFrame``
    with the frame's RTP timestamp as its ``pts`` (all the round trip needs); keyframes'
    sizes are read from their headers, to see that the worker sends what is expected."""

    def decode(self, encoded_frame) -> list:
        from aiortc.mediastreams import VIDEO_TIME_BASE

        size = vp8_keyframe_size(encoded_frame.data)
        if size is not None:
            RETURNED_KEYFRAMES[size] += 1
        frame = av.VideoFrame(16, 16, "yuv420p")
        frame.pts, frame.time_base = encoded_frame.timestamp, VIDEO_TIME_BASE
        return [frame]


def skip_decoding() -> None:
    """VP8 received by this process's aiortc peers is not decoded (``TimestampOnlyDecoder``);
    for the bench's kiosks only: call it in the bench process, before the calls start."""
    from aiortc import rtcrtpreceiver
    from aiortc.codecs import get_decoder

    def decoder(codec):
        if codec.mimeType.lower() == "video/vp8":
            return TimestampOnlyDecoder()
        return get_decoder(codec)

    rtcrtpreceiver.get_decoder = decoder


def cheap_kiosk(peer) -> None:
    """The kiosk's camera sends pre-encoded frames, and a ``LightReader`` (``peer.light``)
    reads the returned video instead of the test client's reader."""
    send_pre_encoded(peer.camera)
    peer.light = None

    @peer.pc.on("track")
    def on_track(track) -> None:
        if track.kind == "video" and peer.light is None:
            if peer.returned is not None:
                peer.returned._task.cancel()  # not started yet: it never reads a frame
            peer.light = LightReader(track=track, camera=peer.camera)


def cheap_camera(peer) -> None:
    """Draw each of the camera's frames once per size; cycling them costs no drawing."""
    camera = peer.camera
    drawn: dict[int, object] = {}
    original = camera.frame_bgr

    def frame_bgr(number: int):
        key = number % 60
        if key not in drawn:
            drawn[key] = original(key)
        return drawn[key]

    camera.frame_bgr = frame_bgr


@dataclass
class Visit:
    client: object
    peer: object
    session_id: str
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.bye()
        await self.peer.close()
        await self._stack.aclose()


@dataclass
class Site:
    base: str
    env: dict
    processes: list

    def worker_pids(self) -> list[int]:
        return [p.popen.pid for p in self.processes if p.name.startswith("worker")]

    async def visit(self, slug: str, *, cheap: bool = False, **peer_options) -> Visit:
        """A live call from kiosk ``slug`` (``cheap``: see ``cheap_kiosk``)."""
        from tests.support.kioskclient import SignalingClient
        from tests.support.loopclient import KioskPeer

        stack = contextlib.AsyncExitStack()
        client = await stack.enter_async_context(SignalingClient.connect(self.base, slug))
        session_id = await client.consent()
        peer = KioskPeer(**peer_options)
        if cheap:
            cheap_kiosk(peer)
        await peer.accept(await client.offer(await peer.offer()))
        return Visit(client=client, peer=peer, session_id=session_id, _stack=stack)


@contextlib.contextmanager
def bench_database(what: str) -> Iterator[str]:
    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kiosk")
    server, _, name = url.rpartition("/")
    name = f"{name.split('?')[0] or 'kiosk'}_bench_{what}"
    psql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    psql(server, f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        from django.db import connections

        connections.close_all()
        psql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def bench_site(
    what: str,
    *,
    kiosks: list[tuple[str, str]],
    workers: int = 1,
    worker_env: dict | None = None,
    site_env: dict | None = None,
) -> Iterator[Site]:
    """daphne + ``workers`` media workers on a private Redis and a bench database, with
    these (slug, engine) kiosks (``site_env``: extra settings for every process)."""
    from tests.support.redis_server import private_redis
    from tests.support.servers import running, start_daphne, start_media_worker

    with bench_database(what) as database_url, private_redis() as redis_server:
        env = dict(
            os.environ,
            DATABASE_URL=database_url,
            REDIS_URL=redis_server.url,
            MEDIA_ENGINE_IN_PROCESS="0",
            MEDIA_ENGINE_LOOPBACK_CANDIDATES="1",
            AUDIT_MEDIA_EVENTS="0",
            DJANGO_SETTINGS_MODULE="kiosk.settings",
            PYTHONPATH=str(REPO_ROOT),
            PYTHONUNBUFFERED="1",
            # the embedded default's settings on these services (they fail closed without)
            KIOSK_EMBEDDED="1",
            **(site_env or {}),
        )
        os.environ.update(DATABASE_URL=database_url, REDIS_URL=redis_server.url)
        os.environ.update(KIOSK_EMBEDDED="1", **(site_env or {}))
        os.environ.update(MEDIA_ENGINE_IN_PROCESS="0", DJANGO_SETTINGS_MODULE="kiosk.settings")
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=REPO_ROOT,
            env=env,
            check=True,
        )
        import django

        django.setup()
        from kiosk.models import Kiosk

        for slug, engine in kiosks:
            Kiosk.objects.create(slug=slug, name=slug, engine=engine)
        daphne, base = start_daphne(env)
        with running([daphne]) as processes:
            worker_environment = dict(env, **(worker_env or {}))
            for n in range(workers):
                processes.append(start_media_worker(worker_environment, f"worker-{n + 1}"))
            time.sleep(0.5)
            yield Site(base=base, env=env, processes=processes)
