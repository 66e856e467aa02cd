"""Someone else's re-encode of a recording made mid-session: does the clip still verify?

The kiosk's own stream is measured by ``bench/provenance.py`` (its encoder starts with the
session, while the mark is at its stronger start). A recording re-encoded later starts a
fresh encoder on the mark at its steady, fainter level. Here: the fused frames of one real
pipeline run (avatar engine, the talking-head clips of ``--faces`` or the astronaut) showing
``--presenter`` (``bench.provenance.PRESENTERS``; Mei, a new kiosk's, by default),
marked with each of ``--keys`` keys as a session marks them; from frame ``--skip`` on (past
the start's strength) they are cut into clips of ``--seconds`` each, brought to 480×360
and encoded by a fresh encoder (VP8 with the media worker's settings, and H.264) at each
bitrate. Per clip, the verdict as the service reads a clip (up to 15 frames spread over
it): by the majority of the frames alone (the stock rule, what the service did before) and
as ``verify_pictures`` reads it now (the majority, else the frames' residuals averaged,
else two frames marked alone with the same tag), in the same run; the share of single
decoded frames found; and the same clips unmarked (false verdicts). Last line: one JSON
object with ``clips_verified_majority``, ``clips_verified``, ``false_verdicts``,
``frames_found`` per codec and bitrate.

    python bench/reencode.py [--faces DIR] [--frames 420] [--skip 60] [--seconds 4]
                             [--keys 3] [--key-seed S] [--kbps 300,500] [--presenter mei]
"""

import argparse
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kiosk.settings")

from bench.provenance import (  # noqa: E402
    PRESENTERS,
    bench_keys,
    bench_session,
    camera_frames,
    marked_run,
    pipeline_run,
)

CODECS = {"vp8": "libvpx", "h264": "libx264"}
SMALL = (480, 360)  # the kiosk's rung at these bitrates


def verdicts(clip: bytes, keys: tuple, want) -> dict:
    """The clip read as the service reads it: by majority alone, and as ``verify_pictures``
    does (majority, mean, frames that agree); ``want(finding)`` says whether a finding names
    the right tag."""
    from media_engine.provenance.verify import read_pictures, verify_pictures

    pictures = read_pictures(clip)
    finding = verify_pictures(pictures, keys)
    majority = finding.marked_frames * 2 > finding.frames and want(finding)
    return {"majority": bool(majority), "verified": bool(finding.ai_generated and want(finding))}


def frames_found(clip: bytes, keys: tuple, want) -> float:
    from media_engine.provenance.verify import verify_pictures
    from tests.provenance.support import decode_clip

    decoded = decode_clip(clip)[::3]
    return float(np.mean([want(verify_pictures([p], keys)) for p in decoded]))


def clips_of(frames: list[np.ndarray], skip: int, length: int) -> list[list[np.ndarray]]:
    small = [cv2.resize(f, SMALL, interpolation=cv2.INTER_AREA) for f in frames[skip:]]
    return [small[i : i + length] for i in range(0, len(small) - length + 1, length)]


def measure(marked, unmarked, key, mark, args) -> dict:
    from media_engine.provenance.verify import read_pictures, verify_pictures
    from tests.provenance.support import encode_clip

    def want(finding) -> bool:
        return (
            finding.ai_generated
            and finding.payload is not None
            and (finding.payload.session_tag == mark.session_tag)
        )

    out = {}
    length = int(args.seconds * 30)
    for name, codec in CODECS.items():
        for kbps in args.kbps:
            rows, nulls, found = [], [], []
            for clip, plain in zip(clips_of(marked, args.skip, length),
                                   clips_of(unmarked, args.skip, length), strict=True):  # fmt: skip
                encoded = encode_clip(clip, codec, kbps)
                rows.append(verdicts(encoded, (key,), want))
                found.append(frames_found(encoded, (key,), want))
                nulls.append(verify_pictures(read_pictures(encode_clip(plain, codec, kbps)),
                                             (key,)).ai_generated)  # fmt: skip
            label = f"{name}_{kbps}k"
            out[label] = {
                "clips": len(rows),
                "verified_majority": sum(r["majority"] for r in rows),
                "verified": sum(r["verified"] for r in rows),
                "false_verdicts": int(sum(nulls)),
                "frames_found": round(float(np.mean(found)), 3),
            }
            print(label, json.dumps(out[label]), file=sys.stderr, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=None)
    parser.add_argument("--frames", type=int, default=420)
    parser.add_argument("--skip", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--keys", type=int, default=3)
    parser.add_argument("--key-seed", default=None)
    parser.add_argument("--kbps", default="300,500")
    parser.add_argument("--presenter", choices=PRESENTERS, default=PRESENTERS[0])
    args = parser.parse_args()
    args.kbps = [int(k) for k in args.kbps.split(",")]
    import django

    django.setup()
    session_id, clock = bench_session(args.key_seed)
    unmarked = pipeline_run(camera_frames(args.frames, args.faces), session_id, args.presenter)
    per_key = {}
    for index, key in enumerate(bench_keys(max(1, args.keys), args.key_seed)):
        marked, _, mark = marked_run(unmarked, key, session_id, clock)
        print("key", index + 1, file=sys.stderr, flush=True)
        per_key[f"key{index + 1}"] = measure(marked, unmarked, key, mark, args)
    totals = {}
    for label in next(iter(per_key.values())):
        rows = [k[label] for k in per_key.values()]
        totals[label] = {
            "clips": sum(r["clips"] for r in rows),
            "clips_verified_majority": sum(r["verified_majority"] for r in rows),
            "clips_verified": sum(r["verified"] for r in rows),
            "false_verdicts": sum(r["false_verdicts"] for r in rows),
            "frames_found": round(float(np.mean([r["frames_found"] for r in rows])), 3),
        }
    print(json.dumps({"presenter": args.presenter, "keys": len(per_key),
                      "seconds": args.seconds, "skip": args.skip,
                      "faces": bool(args.faces and args.faces.is_dir()), "codecs": totals,
                      "per_key": per_key}))  # fmt: skip


if __name__ == "__main__":
    main()
