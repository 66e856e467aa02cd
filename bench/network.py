"""Weak networks, impaired in user space: loss, delay, reordering, a bandwidth cap and loss
bursts injected at the kiosk peer's own transport (aioice's UDP protocol in this process:
RTP and RTCP both ways; ICE and DTLS pass untouched so that the call still sets up). netem
is not available on these machines; the media worker is a real ``manage.py media_engine``
process behind daphne and Redis, with the media engine's NACK, keyframe and bitrate control
(docs/media_engine.md); the kiosk peer's sender gets the same controls, as a browser's
sender has GCC. The link's model is in ``tests/support/impairment.py`` (drop-tail queue of
0.25 s under the cap); ``link_ms_up``/``link_ms_down`` are what the link itself added per
packet each way (delay, jitter, the cap's queue), ``queue_drops_*`` the cap's tail drops,
and ``holes_given_up_down`` / ``frames_without_reference_down`` the kiosk receiver's repairs
that ended in a keyframe request.

Each profile runs one call for ``--seconds``; halfway, every packet is dropped both ways for
``--blackout-ms`` (a cable pulled and plugged back), and ``recovered_ms`` is the time from
the end of that blackout to the first returned frame made from a camera frame sent after it
(NACK/PLI and a keyframe bring the picture back). fps and the round-trip p95 are measured
outside the blackout. The ``clean`` profile is the baseline in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kiosk python bench/network.py \\
        [--seconds 20] [--engine label]

Last line: JSON with ``profiles`` (name, fps, p95_ms, recovered_ms, …) and the targets
(≥ 20 fps, p95 < 300 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.site import LightReader, bench_site, cheap_camera, percentile
from tests.support.impairment import Impairment, Profile, is_media

TARGET_FPS = 20.0
TARGET_P95_MS = 300.0
KIOSK_START_BPS = 500_000  # aiortc's VP8 default: the test kiosk's camera starts there


PROFILES = [
    Profile("clean"),
    Profile("loss5_delay50", loss=0.05, delay_ms=50),
    Profile("cap_1mbit", rate_bps=1_000_000, delay_ms=10),
    Profile("loss_bursts", burst_enter=0.01, delay_ms=20),
    Profile("reorder_jitter", delay_ms=30, jitter_ms=20, loss=0.01),
]


def install(up: Impairment, down: Impairment) -> None:
    """Impair this process's aioice traffic (the kiosk peers'), both ways."""
    from aioice.ice import StunProtocol

    original_send, original_receive = StunProtocol.send_data, StunProtocol.datagram_received

    async def send_data(self, data: bytes, addr) -> None:
        if not is_media(data):
            return await original_send(self, data, addr)

        def deliver() -> None:
            if self.transport is not None and not self.transport.is_closing():
                self.transport.sendto(data, addr)  # (the call may have ended meanwhile)

        up.submit(len(data), deliver)

    def datagram_received(self, data, addr) -> None:
        if not isinstance(data, bytes) or not is_media(data):
            return original_receive(self, data, addr)
        down.submit(len(data), lambda: original_receive(self, data, addr))

    StunProtocol.send_data = send_data
    StunProtocol.datagram_received = datagram_received


async def run_profile(site, profile: Profile, args, links: dict) -> dict:
    links["up"].__init__(profile, 1)
    links["down"].__init__(profile, 2)
    visit = await site.visit("net-bench")
    try:
        browser_like_sender(visit.peer)
        cheap_camera(visit.peer)
        await asyncio.wait_for(visit.peer.track_arrived.wait(), 30)
        reader = LightReader(visit.peer)
        await asyncio.sleep(args.warmup)
        reader.reset()
        half = args.seconds / 2
        await asyncio.sleep(half)
        fps_before, trips = reader.fps(), list(reader.round_trips_ms)
        blackout_end = time.monotonic() + args.blackout_ms / 1000.0
        links["up"].blackout_until = links["down"].blackout_until = blackout_end
        await asyncio.sleep(args.blackout_ms / 1000.0)
        recovered_ms = await recovery(visit.peer.camera, reader, blackout_end, limit_s=half)
        reader.reset()
        await asyncio.sleep(max(1.0, half - (recovered_ms or 0) / 1000.0))
        fps_after = reader.fps()
        trips += reader.round_trips_ms
        reader.stop()
        out = {
            "name": profile.name,
            "fps": round(min(fps_before, fps_after), 1),
            "p50_ms": percentile(trips, 50),
            "p95_ms": percentile(trips, 95),
            "recovered_ms": recovered_ms,
            "loss_up": round(links["up"].dropped / max(1, links["up"].sent), 3),
            "loss_down": round(links["down"].dropped / max(1, links["down"].sent), 3),
            "link_ms_up": link_delay(links["up"]),
            "link_ms_down": link_delay(links["down"]),
            "queue_drops_up": links["up"].queue_dropped,
            "queue_drops_down": links["down"].queue_dropped,
            **receiver_counts(visit.peer),
        }
        out["meets_target"] = bool(
            out["fps"] >= TARGET_FPS and out["p95_ms"] is not None and out["p95_ms"] < TARGET_P95_MS
        )
        print(json.dumps(out), file=sys.stderr, flush=True)
        return out
    finally:
        await visit.close()
        await asyncio.sleep(1.0)


def browser_like_encoder() -> None:
    """The kiosk stands for a browser, whose VP8 encoder (libwebrtc's) bounds a keyframe to
    a few frames of the target (``max-intra-rate`` at least 300) and changes its rate in
    place. aiortc's stock encoder does neither: an unbounded keyframe (~29 kB at 1 Mb/s, all
    a 1 Mb/s link's 0.25 s buffer holds) at every PLI and at every rate change over 10 %
    flooded the capped uplink after the blackout. The kiosk peers of this process encode
    with the worker's own encoder (``media_engine/vp8.py``: the bound, the rate in place),
    installed before the first call's sender starts."""
    from media_engine.vp8 import install_kiosk_vp8_encoder

    install_kiosk_vp8_encoder()


def browser_like_sender(peer) -> None:
    """The kiosk stands for a browser, whose sender runs GCC (loss- and delay-based rate,
    spaced keyframes, bounded retransmission); aiortc's stock sender has none of it and
    would flood the capped uplink. Give the test peer's sender the product's own controls,
    from aiortc's default start rate."""
    from media_engine.bandwidth import watch_bandwidth

    sender = next(t.sender for t in peer.pc.getTransceivers() if t.kind == "video")
    watch_bandwidth(sender, start_bps=KIOSK_START_BPS)


def link_delay(link: Impairment) -> dict:
    """What the link itself added (delay, jitter, the cap's queue), per delivered packet."""
    return {"p50": percentile(link.waits_ms, 50), "p95": percentile(link.waits_ms, 95)}


def receiver_counts(peer) -> dict:
    """The kiosk peer's jitter buffer: holes given up, frames dropped for a missing
    reference (the downlink's repairs; the worker's own buffer does the same uplink)."""
    buffer = next(
        (
            getattr(t.receiver, "_RTCRtpReceiver__jitter_buffer", None)
            for t in peer.pc.getTransceivers()
            if t.kind == "video"
        ),
        None,
    )
    return {
        "holes_given_up_down": getattr(buffer, "gaps_given_up", None),
        "frames_without_reference_down": getattr(buffer, "frames_without_reference", None),
    }


async def recovery(camera, reader, blackout_end: float, limit_s: float) -> float | None:
    """ms from the blackout's end to the first returned frame made from a camera frame sent
    after it."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        await asyncio.sleep(0.005)
        sent = camera.sent_at.get(reader.last_number) if reader.last_number is not None else None
        if sent is not None and sent >= blackout_end:
            return round((reader.last_at - blackout_end) * 1000.0, 1)
    return None


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--blackout-ms", type=float, default=500.0)
    parser.add_argument("--engine", default="label")
    parser.add_argument("--profiles", default=",".join(p.name for p in PROFILES))
    return parser.parse_args()


async def all_profiles(site, args) -> list[dict]:
    links = {"up": Impairment(PROFILES[0], 1), "down": Impairment(PROFILES[0], 2)}
    install(links["up"], links["down"])
    browser_like_encoder()
    chosen = [p for p in PROFILES if p.name in args.profiles.split(",")]
    return [await run_profile(site, p, args, links) for p in chosen]


def main() -> None:
    args = parse_args()
    with bench_site("network", kiosks=[("net-bench", args.engine)], workers=1) as site:
        profiles = asyncio.run(all_profiles(site, args))
    print(
        json.dumps(
            {
                "profiles": profiles,
                "engine": args.engine,
                "frame": "640x480@30",
                "target": {"fps": TARGET_FPS, "p95_ms": TARGET_P95_MS},
                "blackout_ms": args.blackout_ms,
                "load_avg_1m": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
