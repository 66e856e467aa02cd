"""The media worker's VP8 encoder against aiortc's stock one: encode time, bitrate and PSNR.

Both encoders are the real classes (aiortc's ``Vp8Encoder`` and ``media_engine.vp8``'s
``KioskVp8Encoder``), fed the same 640×480 frames at the kiosk's bitrates, in turns (so that a
busy machine slows both alike); each stream is decoded back with aiortc's decoder for the luma
PSNR. The frames are the test camera's (a photograph swaying side to side) unless ``--clip``
names a video (for example a talking face), which is placed in the middle of the picture.

    python bench/vp8.py [--frames 150] [--rounds 3] [--clip talk.mp4]

The last line is one JSON object: ``runs`` (per bitrate and encoder: ``encode_ms`` median per
frame, ``kbps``, ``psnr_y``) and ``speedup`` per bitrate (stock time / kiosk time).
"""

from __future__ import annotations

import argparse
import fractions
import json
import os
import statistics
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BITRATES = (1_500_000, 750_000, 250_000)  # the kiosk's range (media_engine/bandwidth.py)
WIDTH, HEIGHT = 640, 480


def camera_frames(count: int, clip: str | None) -> list[av.VideoFrame]:
    from tests.support.loopclient import StampedCamera

    camera = StampedCamera(WIDTH, HEIGHT)
    faces = []
    if clip:
        with av.open(clip) as container:
            for frame in container.decode(video=0):
                faces.append(cv2.resize(frame.to_ndarray(format="bgr24"), (320, 320)))
                if len(faces) == count:
                    break
    frames = []
    for number in range(count):
        bgr = camera.frame_bgr(number)
        if faces:
            x = 160 + int(40 * np.sin(number / 20))
            bgr[80:400, x : x + 320] = faces[number % len(faces)]
        frame = av.VideoFrame.from_ndarray(bgr, format="bgr24").reformat(format="yuv420p")
        frame.pts, frame.time_base = number * 3000, fractions.Fraction(1, 90000)
        frames.append(frame)
    return frames


def encode_stream(encoder, frames: list[av.VideoFrame]) -> dict:
    from aiortc.codecs.vpx import Vp8Decoder, vp8_depayload

    decoder = Vp8Decoder()
    times, size, psnr = [], 0, []
    for number, frame in enumerate(frames):
        start = time.perf_counter()
        payloads, _ = encoder.encode(frame, force_keyframe=number == 0)
        times.append((time.perf_counter() - start) * 1000.0)
        data = b"".join(vp8_depayload(p) for p in payloads)
        size += len(data)
        for decoded in decoder.codec.decode(av.Packet(data)):
            if number >= 30:  # after the rate control settled
                source = frame.to_ndarray()[:HEIGHT]
                psnr.append(cv2.PSNR(source, decoded.to_ndarray()[:HEIGHT]))
    return {
        "encode_ms": statistics.median(times),
        "kbps": size * 8 / (len(frames) / 30) / 1000,
        "psnr_y": float(np.mean(psnr)),
    }


def measure(args) -> dict:
    from aiortc.codecs.vpx import Vp8Encoder

    from media_engine.vp8 import KioskVp8Encoder

    frames = camera_frames(args.frames, args.clip)
    runs, speedup = [], {}
    for bitrate in BITRATES:
        results: dict[str, list[dict]] = {"aiortc": [], "kiosk": []}
        for _ in range(args.rounds):
            for name, cls in (("aiortc", Vp8Encoder), ("kiosk", KioskVp8Encoder)):
                encoder = cls()
                encoder.target_bitrate = bitrate
                results[name].append(encode_stream(encoder, frames))
        for name, rounds in results.items():
            runs.append(
                {
                    "bitrate_kbps": bitrate // 1000,
                    "encoder": name,
                    **{
                        key: round(statistics.median(r[key] for r in rounds), 2)
                        for key in ("encode_ms", "kbps", "psnr_y")
                    },
                }
            )
        stock, kiosk = runs[-2]["encode_ms"], runs[-1]["encode_ms"]
        speedup[str(bitrate // 1000)] = round(stock / kiosk, 2) if kiosk else None
    return {
        "runs": runs,
        "speedup": speedup,
        "frames": args.frames,
        "content": "clip" if args.clip else "test camera",
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clip", default=None)
    args = parser.parse_args()
    result = measure(args)
    for run in result["runs"]:
        print(json.dumps(run), file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
