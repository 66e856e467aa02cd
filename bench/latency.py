"""The kiosk loop's round trip through the service, against a stock aiortc echo in the same run.

Service: daphne on the embedded default (media engine inside daphne, SQLite, in-memory channel
layer) on a free loopback port; an aiortc kiosk client goes through the real signaling path
(``/ws/kiosk/<slug>/``: hello, consent, offer, answer, bye; docs/signaling.md), sends 640×480
VP8 at 30 fps, each frame stamped with its number (``tests/support/framestamp.py``), and reads
the stamps on the frames that come back. The client uses the complete-frame release too.

Baseline: the same client, stock aiortc (no jitter-buffer change), against a plain aiortc peer
in its own process that echoes the received track (no signaling, no pipeline, no label).

Round trip = from the moment the client's camera hands frame n to its encoder to the moment
the client has decoded the returned frame carrying n: by its stamp, or, where an engine draws
over the stamp (avatar, swap), by its RTP timestamp, which the service keeps equal to the
camera frame's (``media_engine/rtptime.py``; the kiosk page matches frames the same way). Both
runs warm up first (keyframes,
bitrate ramp), then measure for ``--seconds``. CPU is the share of one core used by the
client process and by the server process (daphne with the media engine / the echo peer).
The last line is one JSON object.

    python bench/latency.py [--seconds 20] [--engine label] [--warmup 4]
"""

import argparse
import asyncio
import gc
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT = Path(__file__).resolve()
REPO_ROOT = SCRIPT.parent.parent
sys.path.insert(0, str(REPO_ROOT))

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
DAPHNE_APP = ("kiosk.asgi:application",)
DUMP = os.environ.get("BENCH_LATENCY_DUMP")  # a path prefix: write each run's round trips


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the stock echo peer (its own process) ---------------------------------------------------


async def echo_peer() -> None:
    """Read an offer (one JSON line on stdin), answer it (one line on stdout), echo the video
    track back with stock aiortc until stdin closes."""
    from aiortc import RTCPeerConnection, RTCSessionDescription

    from media_engine.ice import offer_loopback_candidates

    offer_loopback_candidates()
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    pc = RTCPeerConnection()

    @pc.on("track")
    def on_track(track):
        pc.addTrack(track)  # the received frames go straight back: a stock echo

    await pc.setRemoteDescription(RTCSessionDescription(**json.loads(line)))
    await pc.setLocalDescription(await pc.createAnswer())
    print(json.dumps({"sdp": pc.localDescription.sdp, "type": "answer"}), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)  # until the bench closes stdin
    await pc.close()


# --- measuring one call ---------------------------------------------------------------------


async def measure(peer, server_pid: int, warmup: float, seconds: float) -> dict:
    """Warm up, then measure the round trips of ``peer`` for ``seconds``."""
    deadline = time.monotonic() + 30
    while peer.returned is None or peer.returned.matched < 10:
        if time.monotonic() > deadline:
            raise RuntimeError("no video matching the camera's frames came back within 30 s")
        await asyncio.sleep(0.1)
    await asyncio.sleep(warmup)
    returned = peer.returned
    returned.check_label = False  # label checks cost client CPU; the tests check the label
    returned.reset()
    sent_before = peer.camera.count
    cpu_client, cpu_server = cpu_seconds(os.getpid()), cpu_seconds(server_pid)
    start = time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - start
    cpu_client = cpu_seconds(os.getpid()) - cpu_client
    cpu_server = cpu_seconds(server_pid) - cpu_server
    trips = list(returned.round_trips_ms)
    if DUMP:
        kind = "service" if peer.returned.match_timestamps else "baseline"
        Path(f"{DUMP}.{kind}").write_text("\n".join(f"{t:.2f}" for t in trips))  # noqa: ASYNC240
    return {
        "p50_ms": round(statistics.median(trips), 1) if trips else None,
        "p95_ms": round(percentile(trips, 95), 1) if trips else None,
        "fps": round(returned.matched / elapsed, 1),
        "sent_fps": round((peer.camera.count - sent_before) / elapsed, 1),
        "frames": returned.matched,
        "frames_by_stamp": returned.stamped,
        "cpu_client_pct": round(100 * cpu_client / elapsed, 1),
        "cpu_server_pct": round(100 * cpu_server / elapsed, 1),
    }


async def baseline(warmup: float, seconds: float) -> dict:
    from tests.support.loopclient import KioskPeer

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        "--echo-peer",
        cwd=REPO_ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    peer = KioskPeer(complete_frame_release=False, camera_timestamps=False)  # all stock
    try:
        sdp = await peer.offer()
        process.stdin.write((json.dumps({"sdp": sdp, "type": "offer"}) + "\n").encode())
        await process.stdin.drain()
        answer = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
        await peer.accept(answer["sdp"])
        return await measure(peer, process.pid, warmup, seconds)
    finally:
        await peer.close()
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()


# --- the service through signaling ----------------------------------------------------------


def prepare_site(var_dir: str, engine: str, env: dict) -> str:
    """Migrate, make the bench kiosk and enrol it; returns the device credential."""
    from tests.support.enrolment import enrol_with_manage

    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=REPO_ROOT, env=env, check=True)
    code = (
        "from kiosk.models import Kiosk; "
        "Kiosk.objects.update_or_create(slug='bench', defaults="
        f"{{'name': 'Bench kiosk', 'engine': {engine!r}, 'fusion_enabled': True}})"
    )
    subprocess.run([*manage, "shell", "-c", code], cwd=REPO_ROOT, env=env, check=True)
    return enrol_with_manage(env, "bench")


def start_daphne(port: int, env: dict, log: Path) -> subprocess.Popen:
    with log.open("w") as out:  # a file, not a pipe: nobody reads it while the bench runs
        return subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), *DAPHNE_APP],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )


async def signaling_call(url: str, peer, messages: list, token: str) -> object:
    """hello -> consent -> offer -> answer over the kiosk WebSocket as the enrolled device;
    returns the socket."""
    import websockets

    from tests.support.enrolment import cookie_headers

    origin = url.replace("ws://", "http://").split("/ws/")[0]  # daphne checks the Origin
    socket_ = await websockets.connect(
        url,
        origin=origin,
        open_timeout=30,
        max_size=2**20,
        additional_headers=cookie_headers("bench", token),
    )

    async def next_of(kind: str) -> dict:
        while True:
            message = json.loads(await asyncio.wait_for(socket_.recv(), 30))
            messages.append(message)
            if message["type"] == kind:
                return message
            if message["type"] in ("error", "ended"):
                raise RuntimeError(f"signaling failed: {message}")

    await next_of("hello")
    await socket_.send(json.dumps({"type": "consent", "given": True, "language": "en"}))
    await next_of("consent_ok")
    await socket_.send(json.dumps({"type": "offer", "sdp": await peer.offer()}))
    answer = await next_of("answer")
    await peer.accept(answer["sdp"])
    return socket_


async def service(warmup: float, seconds: float, engine: str) -> dict:
    from tests.support.loopclient import KioskPeer

    with tempfile.TemporaryDirectory(prefix="bench-latency-") as var_dir:
        env = dict(os.environ)
        for name in ("DATABASE_URL", "REDIS_URL"):
            env.pop(name, None)  # the embedded default
        env.update(
            KIOSK_VAR_DIR=var_dir,
            DJANGO_DEBUG="1",
            MEDIA_ENGINE_IN_PROCESS="1",
            MEDIA_ENGINE_LOOPBACK_CANDIDATES="1",
            KIOSK_NETWORKS="127.0.0.0/8",  # the bench's peer is on loopback
            KIOSK_LOG_LEVEL="WARNING",
            PYTHONPATH=str(REPO_ROOT),
        )
        token = prepare_site(var_dir, engine, env)
        port = free_port()
        log = Path(var_dir) / "daphne.log"
        daphne = start_daphne(port, env, log)
        peer = KioskPeer(complete_frame_release=True)
        messages: list = []
        socket_ = None
        try:
            for _ in range(300):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    if daphne.poll() is not None:
                        raise RuntimeError(f"daphne exited: {log.read_text()}") from None
                    await asyncio.sleep(0.1)
            url = f"ws://127.0.0.1:{port}/ws/kiosk/bench/"
            try:
                socket_ = await signaling_call(url, peer, messages, token)
            except Exception:
                print(f"daphne's log:\n{log.read_text()[-4000:]}", file=sys.stderr)
                if DUMP:
                    Path(f"{DUMP}.daphne.log").write_text(log.read_text())  # noqa: ASYNC240
                raise
            reader = asyncio.ensure_future(_collect(socket_, messages))
            result = await measure(peer, daphne.pid, warmup, seconds)
            reader.cancel()
            stats = [m["stats"] for m in messages if m.get("type") == "stats"]
            if stats:
                result["server_stage_ms"] = stats[-1].get("stage_ms")
                result["server_fps_in"] = stats[-1].get("fps_in")
                result["server_fps_out"] = stats[-1].get("fps_out")
                result["server_processing_size"] = stats[-1].get("processing_size")
                result["server_adaptive"] = stats[-1].get("adaptive")
            return result
        finally:
            if socket_ is not None:
                try:
                    await socket_.send(json.dumps({"type": "bye", "reason": "bench done"}))
                    await socket_.close()
                except Exception:
                    pass
            await peer.close()
            daphne.terminate()
            try:
                daphne.wait(timeout=15)
            except subprocess.TimeoutExpired:
                daphne.kill()


async def _collect(socket_, messages: list) -> None:
    try:
        async for raw in socket_:
            messages.append(json.loads(raw))
    except Exception:
        pass


# Round-trip targets (BENCHMARKS.md): p50 and p95 ms; None where there is none.
TARGETS = {"label": {"p50_ms": 35.0, "p95_ms": 50.0}}
DEFAULT_TARGET = {"p50_ms": 45.0, "p95_ms": None}


def target_met(served: dict, target: dict) -> bool:
    for key, limit in target.items():
        if limit is not None and (served[key] is None or served[key] > limit):
            return False
    return True


async def run(args: argparse.Namespace) -> dict:
    from media_engine.ice import offer_loopback_candidates

    offer_loopback_candidates()  # loopback-only machines (CI): the client needs 127.0.0.1 too
    # the client's own collector pauses would land in both runs' round trips alike
    # (the media worker does the same: media_engine.worker.freeze_startup_heap)
    gc.collect()
    gc.freeze()
    load_before = os.getloadavg()[0]
    base = await baseline(args.warmup, args.seconds)
    print(f"baseline (stock aiortc echo): {json.dumps(base)}", flush=True)
    served = await service(args.warmup, args.seconds, args.engine)
    print(f"service ({args.engine}, through signaling): {json.dumps(served)}", flush=True)
    return {
        "benchmark": "latency",
        "engine": args.engine,
        "seconds": args.seconds,
        "resolution": "640x480",
        "codec": "VP8",
        "fps_target": 30,
        "service_p50_ms": served["p50_ms"],
        "service_p95_ms": served["p95_ms"],
        "service_fps": served["fps"],
        "baseline_p50_ms": base["p50_ms"],
        "baseline_p95_ms": base["p95_ms"],
        "baseline_fps": base["fps"],
        "p50_ratio": round(served["p50_ms"] / base["p50_ms"], 2)
        if served["p50_ms"] and base["p50_ms"]
        else None,
        "service_cpu_server_pct": served["cpu_server_pct"],
        "service_cpu_client_pct": served["cpu_client_pct"],
        "baseline_cpu_server_pct": base["cpu_server_pct"],
        "baseline_cpu_client_pct": base["cpu_client_pct"],
        "service_stage_ms": served.get("server_stage_ms"),
        "service_processing_size": served.get("server_processing_size"),
        "service_adaptive": served.get("server_adaptive"),
        "target": TARGETS.get(args.engine, DEFAULT_TARGET),
        "target_met": target_met(served, TARGETS.get(args.engine, DEFAULT_TARGET)),
        "machine": f"{platform.node()} {os.cpu_count()} cpu {platform.machine()}",
        # other work on the machine skews the tails: the 1-minute load before and after
        "load_avg": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=4.0)
    parser.add_argument("--engine", default="label", help="the bench kiosk's fusion engine")
    parser.add_argument("--echo-peer", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_peer:
        asyncio.run(echo_peer())
        return
    result = asyncio.run(run(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
