"""Sound and picture in step at the customer's side of a portal call.

The service runs on its embedded default (daphne with the media engine inside, SQLite in a
temporary directory). Each call: a customer and an agent, both real aiortc peers, through the
portal's sockets (``tests/support/portalclient.py``). The agent's camera (640x480, 30 fps,
the stamped astronaut) and microphone share one clock; every ``--period`` seconds the agent's
video has a marked frame (the "flash") and the agent's audio a 5 ms click at the same instant.

At the customer's side:
- the flash's arrival: the agent's avatar engine redraws the whole picture, so the flash is
  found by its RTP timestamp (fused frames keep the camera frame's timestamp end to end:
  ``media_engine/rtptime.py``); when the newest-frame reader skipped the marked frame, the next
  one is used and its arrival moved back by the timestamp difference;
- the click's arrival: the first loud sample of the decoded audio, moved back by where in its
  20 ms frame it lies.

The offset is click arrival minus flash arrival (positive: sound late). Both are measured as
decoded by the customer's receiver, with the video jitter buffer releasing complete frames and
the audio jitter buffer without aiortc's fixed 4-packet prefetch (a browser's NetEq adapts
to a clean loopback); a browser's own playout is not in the figure. The baseline is the same
calls with the agent's voice not held back (``PORTAL_LIPSYNC=0``), in the same run.

    python bench/av_sync.py [--calls 3] [--seconds 12] [--period 1.0]

The last line is one JSON object: offset_ms_median, offset_ms_max_abs, measurements, calls,
video_latency_ms_median/p95 (agent camera -> customer), audio_latency_ms_median,
worker_ms_median (the worker's own stats: video pipeline delay, the agent's voice in the
worker's receive buffer, the hold), baseline, load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
WARMUP_S = 3.0
AUDIO_FRAMES: list[int] = []  # (debug) decoded audio frames at the customer
DAPHNE = (sys.executable, "-m", "daphne", "-b", "127.0.0.1")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=12.0, help="measured per call")
    parser.add_argument("--period", type=float, default=1.5, help="seconds between flashes")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=int, default=30)
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SETUP = """
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from consent.models import Identity
from kiosk.models import Kiosk
from kiosk.portal import services
from kiosk.portal.models import AgentProfile
services.ensure_portal_setup()
Kiosk.objects.get_or_create(slug="bench", defaults={"name": "Bench kiosk"})
avatar = Identity.objects.get(asset="avatar_default")
user, _ = get_user_model().objects.get_or_create(username="bench-agent")
user.groups.add(Group.objects.get(name="agent"))
profile = {"display_name": "Bench", "identity": avatar}
AgentProfile.objects.get_or_create(user=user, defaults=profile)
from tests.dashboard_support import login
from tests.support.enrolment import cookie, enrol
client = Client()
login(client, user)  # an agent logs in with the second factor
print("COOKIE=" + client.cookies["sessionid"].value)
print("DEVICE=" + cookie("bench", enrol("bench")))
"""


def prepare_site(env: dict) -> tuple[str, str]:
    """Migrate, make the bench kiosk (enrolled) and its agent; returns the agent's session
    cookie and the kiosk device's cookie."""
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=REPO_ROOT, env=env, check=True)
    out = subprocess.run(
        [*manage, "shell", "-c", SETUP], cwd=REPO_ROOT, env=env, check=True, capture_output=True
    ).stdout.decode()
    lines = out.splitlines()
    session = next(line[7:] for line in lines if line.startswith("COOKIE="))
    return session, next(line[7:] for line in lines if line.startswith("DEVICE="))


class ClickMicrophone:
    """The agent's microphone: a quiet tone, and a click at camera start + k * period."""

    def __new__(cls, camera, period: float):
        from tests.support.portalclient import AUDIO_RATE, AUDIO_SAMPLES, ToneMicrophone

        class _Mic(ToneMicrophone):
            async def recv(self):
                frame = await super().recv()
                start = camera._start
                if start is None:
                    return frame
                t0 = self._start + (self.count - 1) * AUDIO_SAMPLES / AUDIO_RATE
                k = np.ceil((t0 - start) / period)
                at = start + k * period - t0
                if k >= 1 and 0 <= at < AUDIO_SAMPLES / AUDIO_RATE:
                    samples = frame.to_ndarray()
                    first = int(at * AUDIO_RATE)
                    samples[0, first : first + 240] = 28000
                    samples[0, first + 120 : first + 240] = -28000
                    new = type(frame).from_ndarray(samples, format="s16", layout="mono")
                    new.sample_rate, new.pts, new.time_base = (
                        frame.sample_rate,
                        frame.pts,
                        frame.time_base,
                    )
                    return new
                return frame

        return _Mic(frequency=300.0)


def no_audio_prefetch(pc) -> None:
    """The customer's audio receiver hands on each packet at once (see the docstring)."""
    for transceiver in pc.getTransceivers():
        if transceiver.kind == "audio":
            buffer = getattr(transceiver.receiver, "_RTCRtpReceiver__jitter_buffer", None)
            if buffer is not None:
                buffer._prefetch = 0


async def drain(track) -> None:
    """Receive and drop (the agent's side of the call)."""
    from aiortc.mediastreams import MediaStreamError

    with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
        while True:
            await track.recv()


async def video_arrivals(track, into: list) -> None:
    """(arrival, pts) of every decoded frame: nothing else is done with them here."""
    from aiortc.mediastreams import MediaStreamError

    with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
        while True:
            frame = await track.recv()
            into.append((time.monotonic(), frame.pts))


async def click_times(track, into: list[float]) -> None:
    """Onset times (monotonic) of clicks in a received audio track."""
    from aiortc.mediastreams import MediaStreamError

    loud_before = False
    try:
        while True:
            frame = await track.recv()
            AUDIO_FRAMES.append(frame.samples)
            now = time.monotonic()
            samples = np.abs(frame.to_ndarray().astype(np.int32)).reshape(-1, frame.samples)
            loud = np.nonzero(samples.max(axis=0) > 12000)[0]
            if loud.size and not loud_before:
                into.append(now - (frame.samples - loud[0]) / frame.sample_rate)
            loud_before = bool(loud.size)
    except (MediaStreamError, asyncio.CancelledError):
        pass


async def one_call(base: str, cookie: str, device: str, args) -> dict:
    from tests.support.loopclient import StampedCamera
    from tests.support.portalclient import (
        Peer,
        Socket,
        ToneMicrophone,
        wait_until,
    )

    async with (
        Socket.open(base, "/ws/kiosk/bench/portal/", device=device) as customer,
        Socket.open(base, "/ws/portal/agent/", cookie) as agent,
    ):
        camera = StampedCamera(args.width, args.height, args.fps)
        agent_peer = Peer(camera, ClickMicrophone(camera, args.period), previews=0)
        customer_peer = Peer(StampedCamera(160, 120, 10), ToneMicrophone())
        clicks: list[float] = []
        readers: list[asyncio.Future] = []

        arrivals: list[tuple[float, int | None]] = []

        def on_track(track) -> None:
            if track.kind == "video":
                readers.append(asyncio.ensure_future(video_arrivals(track, arrivals)))
            else:
                readers.append(asyncio.ensure_future(click_times(track, clicks)))

        customer_peer.pc.remove_all_listeners("track")
        customer_peer.pc.on("track", on_track)
        agent_peer.pc.remove_all_listeners("track")  # the agent's side is not measured:
        agent_peer.pc.on("track", lambda t: readers.append(asyncio.ensure_future(drain(t))))
        sha = customer.hello["consent_texts"][1]["sha256"]
        await customer.send(
            {"type": "join", "service": "cards", "language": "en", "text_sha256": sha}
        )
        await customer.expect("queued")
        await agent.send({"type": "accept", "service": "cards"})
        await customer.expect("accepted")
        await customer.send({"type": "offer", "sdp": await customer_peer.offer()})
        await customer_peer.accept((await customer.expect("answer"))["sdp"])
        no_audio_prefetch(customer_peer.pc)
        await agent.send({"type": "offer", "sdp": await agent_peer.offer()})
        await agent_peer.accept((await agent.expect("answer"))["sdp"])
        await wait_until(lambda: len(arrivals) > 0, 60)
        worker_stats: list[dict] = []
        collector = asyncio.ensure_future(collect_stats(customer, worker_stats))
        await asyncio.sleep(WARMUP_S + args.seconds)
        collector.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await collector
        arrivals = list(arrivals)
        if os.environ.get("BENCH_AV_DEBUG"):
            print("server", worker_stats[-1] if worker_stats else None, file=sys.stderr)
        await customer.send({"type": "bye"})
        for reader in readers:
            reader.cancel()
        await customer_peer.close()
        await agent_peer.close()
        return {**pair(camera, arrivals, clicks, args.period), **worker_paths(worker_stats)}


async def collect_stats(customer, into: list[dict]) -> None:
    """The worker's stats of the call (every ~2 s on the customer's socket)."""
    while True:  # ends when cancelled (the socket's own recv: safe to cancel)
        message = json.loads(await customer.socket.recv())
        if message.get("type") == "stats":
            into.append(message.get("stats") or {})


WORKER_FIELDS = ("pipeline_delay_ms", "voice_buffer_ms", "audio_delay_ms")


def worker_paths(stats: list[dict]) -> dict:
    """The worker's own view of the two paths (after the warm-up's first report)."""
    return {
        field: [float(s[field]) for s in stats[1:] if isinstance(s.get(field), (int, float))]
        for field in WORKER_FIELDS
    }


def pair(camera, arrivals: list, clicks: list[float], period: float) -> dict:
    """Match each click with its flash; offsets and latencies in milliseconds."""
    start = camera._start
    if os.environ.get("BENCH_AV_DEBUG"):
        print(
            "clicks",
            [round(c - start, 3) for c in clicks],
            "frames",
            len(arrivals),
            "pts",
            [p for _, p in arrivals[:3]],
            [p for _, p in arrivals[-3:]],
            "audio frames",
            len(AUDIO_FRAMES),
            "camera",
            camera.count,
            camera.rtp_time(camera.count),
            file=sys.stderr,
        )
    offsets, video_ms, audio_ms = [], [], []
    for click in clicks:
        k = int((click - start) // period)  # a click arrives within one period of its instant
        if k < 1 or k * period < WARMUP_S:
            continue
        flash_at = start + k * period
        flash_rtp = camera.rtp_time(round(k * period * camera.fps))
        after = [(t, pts) for t, pts in arrivals if pts is not None and pts >= flash_rtp]
        if not after:
            continue
        t, pts = after[0]
        if pts - flash_rtp > 90000 * 0.5:
            continue  # the flash's frames were all skipped: no measurement
        shown = t - (pts - flash_rtp) / 90000
        offsets.append(float(click - shown) * 1000)
        video_ms.append(float(shown - flash_at) * 1000)
        audio_ms.append(float(click - flash_at) * 1000)
    return {"offsets": offsets, "video_ms": video_ms, "audio_ms": audio_ms}


def start_daphne(port: int, env: dict, log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(
            [*DAPHNE, "-p", str(port), "kiosk.asgi:application"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )


async def run_mode(args, lipsync: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-av-sync-") as var_dir:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env.update(
            KIOSK_VAR_DIR=var_dir,
            DJANGO_DEBUG="1",
            MEDIA_ENGINE_IN_PROCESS="1",
            MEDIA_ENGINE_LOOPBACK_CANDIDATES="1",
            KIOSK_NETWORKS="127.0.0.0/8",  # the bench's peers are on loopback
            KIOSK_LOG_LEVEL="WARNING",
            PYTHONPATH=str(REPO_ROOT),
            PORTAL_LIPSYNC="1" if lipsync else "0",
        )
        cookie, device = prepare_site(env)
        port = free_port()
        log = Path(var_dir) / "daphne.log"
        daphne = start_daphne(port, env, log)
        try:
            for _ in range(300):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    await asyncio.sleep(0.1)
            results = []
            for _ in range(args.calls):
                results.append(await one_call(f"http://127.0.0.1:{port}", cookie, device, args))
                await asyncio.sleep(1.0)
        except Exception:
            print(log.read_text()[-4000:], file=sys.stderr)
            raise
        finally:
            daphne.terminate()
            try:
                daphne.wait(30)
            except subprocess.TimeoutExpired:
                daphne.kill()
                daphne.wait(10)
    keys = ("offsets", "video_ms", "audio_ms", *WORKER_FIELDS)
    merged = {key: [v for r in results for v in r[key]] for key in keys}
    return figures(merged, len(results))


def figures(merged: dict, calls: int) -> dict:
    offsets = merged["offsets"]
    if not offsets:
        return {"calls": calls, "measurements": 0}
    video = sorted(merged["video_ms"])
    return {
        "offset_ms_median": round(statistics.median(offsets), 1),
        "offset_ms_max_abs": round(max(abs(o) for o in offsets), 1),
        "offset_ms_p05_p95": [round(float(np.percentile(offsets, q)), 1) for q in (5, 95)],
        "within_45ms": int(sum(abs(o) <= 45 for o in offsets)),
        "measurements": len(offsets),
        "calls": calls,
        "video_latency_ms_median": round(statistics.median(video), 1),
        "video_latency_ms_p95": round(float(np.percentile(video, 95)), 1),
        "audio_latency_ms_median": round(statistics.median(merged["audio_ms"]), 1),
        # The worker's stats: video pipeline delay, the agent's voice in the receive buffer,
        # and the hold applied (medians over the calls' reports).
        "worker_ms_median": {
            field.removesuffix("_ms"): round(statistics.median(merged[field]), 1)
            for field in WORKER_FIELDS
            if merged[field]
        },
    }


def main() -> None:
    args = parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kiosk.settings")
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    os.environ["KIOSK_VAR_DIR"] = tempfile.mkdtemp(prefix="bench-av-sync-client-")
    import django

    django.setup()
    from media_engine.ice import offer_loopback_candidates

    offer_loopback_candidates()
    result = asyncio.run(run_mode(args, lipsync=True))
    result["baseline_without_hold"] = asyncio.run(run_mode(args, lipsync=False))
    result["load_avg_1m"] = round(os.getloadavg()[0], 2)
    result["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
