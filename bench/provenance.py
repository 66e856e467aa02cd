"""The provenance mark against invisible-watermark's DWT-DCT, in the same run.

Fused frames come from real pipeline runs (avatar engine, perception on), one per
presenter (``--presenters``: the shipped presenters Mei and Daniel, a new kiosk's, and the
avatar of a kiosk without an identity, ``avatar``; all three by default), over a moving
visitor: the talking-head clips of a faces folder (``--faces``, each frame placed in a
640×480 picture with the face about a third of its height) or, without one, scikit-image's
astronaut in motion. Each frame is taken just before the mark (unmarked) and as it leaves
the pipeline (marked, yuv420p). Then, per transformation (JPEG q70, half size, 10 % crops,
brightness/contrast, VP8 and H.264 at 300 kb/s with aiortc's encoder settings, whole clips):
the share of frames whose mark is found *with the right session*. False positives: unmarked
fused frames, the camera frames and crops/flips/scales of scikit-image's natural images.
PSNR against the unmarked frame, and embedding time per 640×480 frame on one CPU thread
(wall clock and the thread's CPU time: on a shared machine the first includes other
processes' turns). For the codecs, the encoder's first half second (its rate control starts
starved: the decoded picture itself is ~5 dB worse there) is also reported on its own, and
VP8 with the clock crossing a minute halfway through the clip (``vp8_300k_minute_change``:
a condition of every live stream; the tag is the session's, so it counts in
``detect_rate_min`` like a transformation).

invisible-watermark (``imwatermark``, DWT-DCT with its default settings, 64 bits) gets every
``--iw-every``-th of the same frames and unmarked images (its decoder is a Python loop) and
the same transformations; a frame counts as detected when at most 4 of
its 64 bits are wrong (generous: it has no sync and no error correction of its own).

    python bench/provenance.py [--frames 300] [--natural 500] [--faces DIR] [--iw-every 5]
                               [--keys 3] [--key-seed S] [--vp8-extra k=v,...] [--floor F]
                               [--presenters mei,daniel,avatar]
    python bench/provenance.py --sheets /tmp/sheets [--faces DIR]

How well the mark survives depends on the key (the pattern, hence what the codec keeps of
it, is the key's): ``--keys N`` measures N keys generated in this process (from
``--key-seed`` when given, with the session and its minute, so that two runs can be
compared on the same keys and tags, frame for frame; random otherwise), each on the same
fused frames (the pipeline runs once per presenter, perception on the frames' own 30 fps
clock; each key's mark is added to the frames it took before the mark, then brought to
yuv420p as the pipeline does), and reports each key and the worst of them. The configured
key is not used.

``--vp8-extra k=v,...`` puts libvpx options over the media worker's (``media_engine/vp8.py``)
for both the VP8 runs (a what-if for the encoder's settings: the figure is then not the
product's; the last line names them in ``vp8_extra_options``). ``--floor F`` likewise puts
``F`` in place of the mark's flat-region share (``mark.FLOOR``; with ``--sheets`` too), a
what-if named in ``floor_what_if``.

``--sheets DIR`` only writes contact sheets of the mark on the shipped presenters into
``DIR`` (outside the repository; ``bench/provenance_sheets.py``) and measures nothing.

The last line is one JSON object: ``detect_rate_min``, ``false_positive_rate``,
``psnr_db_min`` (the worst over the keys and presenters), ``embed_ms_median`` (ours),
``per_key`` (each presenter's and key's figures, as ``presenter/fingerprint``: a short
fingerprint, not the secret; the false positives are the key's, over every presenter's
unmarked frames), ``invisible_watermark`` (the same
for it), the rates per transformation and the load average.
"""

import argparse
import fractions
import hashlib
import importlib.util
import itertools
import json
import os
import secrets
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kiosk.settings")
CLIPS = ("talk_woman_expressions.mp4", "talk_man_glasses.mp4", "talk_man_mouth.mp4")
IW_BITS = 64
IW_MAX_ERRORS = 4
# Whose frames are marked: the shipped presenters (a new kiosk shows the first) and the
# avatar of a kiosk without an identity.
PRESENTERS = ("mei", "daniel", "avatar")


def camera_frames(count: int, faces: Path | None) -> list[np.ndarray]:
    """``count`` 640×480 camera pictures of a moving visitor."""
    sources: list[np.ndarray] = []
    if faces is not None and faces.is_dir():
        per_clip = -(-count // len(CLIPS))
        for name in CLIPS:
            with av.open(str(faces / name)) as container:
                for i, frame in enumerate(container.decode(video=0)):
                    if i >= per_clip:
                        break
                    sources.append(frame.to_ndarray(format="bgr24"))
    else:
        import skimage.data

        astronaut = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
        sources = [astronaut] * count
    out = []
    for i, source in enumerate(sources[:count]):
        canvas = np.full((480, 640, 3), (72, 86, 98), np.uint8)
        side = 320
        picture = cv2.resize(source, (side, side), interpolation=cv2.INTER_AREA)
        x = 160 + round(40 * np.sin(i / 15))
        y = 80 + round(12 * np.cos(i / 11))
        canvas[y : y + side, x : x + side] = picture
        out.append(canvas)
    return out


class Recorder:
    """Stands in for the pipeline's mark: keeps the frame before and after the real one."""

    def __init__(self, mark) -> None:
        self.mark, self.unmarked, self.marked = mark, [], []

    def apply(self, frame: np.ndarray) -> np.ndarray:
        self.unmarked.append(frame.copy())
        self.mark.apply(frame)
        self.marked.append(frame.copy())
        return frame


def presenter_pipeline(presenter: str, session_id: str):
    """The media worker's pipeline of one session (avatar engine, perception on) showing a
    shipped ``presenter`` (``PRESENTERS``; ``avatar``: the avatar of a kiosk without an
    identity), at one size for the whole run (adaptive resolution would move it with this
    machine's load)."""
    from media_engine.assembly import build_pipeline
    from media_engine.engines.base import IdentityImage
    from media_engine.engines.registry import create_engine

    pipeline = build_pipeline("avatar", None, session_id)
    if presenter != "avatar":
        picture = np.zeros((8, 8, 3), np.uint8)
        identity = IdentityImage(None, presenter, picture, presenter=presenter)
        pipeline.engine = create_engine("avatar", identity)
    pipeline.adaptive, pipeline.processing_size = None, (640, 480)
    # Perception's smoothing on the frames' own 30 fps clock, not this machine's: a run
    # faster than real time would otherwise depend on the machine's speed and load.
    perceiver, frame_number = pipeline.perceive.__self__, itertools.count()
    pipeline.perceive = lambda bgr: perceiver.process(bgr, timestamp=next(frame_number) / 30)
    return pipeline


def pipeline_run(
    cameras: list[np.ndarray], session_id: str, presenter: str = "avatar"
) -> list[np.ndarray]:
    """The fused frames of a real pipeline run, as they were before the mark (BGR)."""
    return recorded_run(presenter_pipeline(presenter, session_id), cameras).unmarked


def recorded_run(pipeline, cameras: list[np.ndarray]) -> "Recorder":
    """Run ``cameras`` through ``pipeline`` at 30 fps, keeping each frame before and after
    its mark (the pipeline's mark is wrapped in a ``Recorder``)."""
    recorder = Recorder(pipeline.provenance)
    pipeline.provenance = recorder
    for i, bgr in enumerate(cameras):
        frame = av.VideoFrame.from_ndarray(bgr, format="bgr24").reformat(format="yuv420p")
        frame.pts, frame.time_base = 3000 * i, fractions.Fraction(1, 90000)
        pipeline.process(frame, fusion_allowed=True)
    return recorder


def bench_keys(count: int, seed: str | None) -> tuple:
    """``count`` keys made here: from ``seed`` (the same keys in every run) or random."""
    from media_engine.provenance.keys import Key

    def secret(index: int) -> str:
        if seed is None:
            return secrets.token_hex(32)
        return hashlib.sha256(f"{seed}/{index}".encode()).hexdigest()

    return tuple(Key(f"bench{i + 1}", secret(i).encode()) for i in range(count))


def bench_session(seed: str | None) -> tuple[str, Callable[[], float]]:
    """The session id and the clock the marks are made with: from ``seed`` (the same tags
    in every run, so that a run can be repeated frame for frame) or a new session now."""
    if seed is None:
        return str(uuid.uuid4()), time.time
    session = uuid.uuid5(uuid.NAMESPACE_URL, f"kiosk-bench/{seed}")
    minute = 29_000_000 + session.int % 100_000  # a minute of 2025, from the seed
    return str(session), lambda: minute * 60.0


def fingerprint(key) -> str:
    """A short name for a key in the output (not its secret)."""
    return f"{key.key_id}:{hashlib.sha256(key.secret).hexdigest()[:8]}"


def marked_run(unmarked: list[np.ndarray], key, session_id: str, clock=time.time):
    """What the pipeline sends with ``key``: its session's mark added to each fused frame
    (a new stream: the start's strength first), then the frame brought to yuv420p."""
    from media_engine.pipeline import to_video_frame
    from media_engine.provenance.keys import installation
    from media_engine.provenance.mark import SessionMark
    from media_engine.provenance.payload import session_tag

    tag = session_tag(key.secret, installation(), session_id)
    recorder = Recorder(SessionMark(key.secret, tag, clock=clock))
    outputs = [
        to_video_frame(recorder.apply(frame.copy())).to_ndarray(format="bgr24")
        for frame in unmarked
    ]
    return outputs, recorder, recorder.mark


def natural_images(count: int) -> list[np.ndarray]:
    """Crops, flips and scales of scikit-image's natural images (BGR)."""
    import skimage.data

    names = [
        "astronaut", "camera", "coffee", "chelsea", "rocket", "hubble_deep_field", "cat",
        "immunohistochemistry", "moon", "page", "text", "coins", "grass", "gravel", "brick",
        "colorwheel", "retina", "skin", "clock", "horse",
    ]  # fmt: skip
    images = []
    for name in names:
        try:
            image = getattr(skimage.data, name)()
        except Exception:  # a data file this scikit-image lacks: skip it
            continue
        if image.dtype != np.uint8:
            image = (255 * (image.astype(float) / max(1, image.max()))).astype(np.uint8)
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        images.append(cv2.cvtColor(image[:, :, :3], cv2.COLOR_RGB2BGR))
    rng = np.random.default_rng(7)
    out = []
    while len(out) < count:
        image = images[len(out) % len(images)]
        h, w = image.shape[:2]
        share = rng.uniform(0.5, 1.0)
        ch, cw = max(96, int(h * share)), max(96, int(w * share))
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        crop = image[y : y + ch, x : x + cw]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        if rng.random() < 0.3:
            crop = crop[::-1]
        scale = rng.uniform(0.6, 1.6)
        out.append(cv2.resize(crop, (max(96, int(cw * scale)), max(96, int(ch * scale)))))
    return out


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def load_iw():
    """imwatermark's DWT-DCT class without its package import (which imports torch for
    another method)."""
    spec = importlib.util.find_spec("imwatermark")
    path = Path(spec.submodule_search_locations[0]) / "maxDct.py"
    module_spec = importlib.util.spec_from_file_location("imwatermark_maxdct", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.EmbedMaxDct


CODEC_START = 15  # the encoder's first half second (30 fps), reported on its own


VP8_EXTRA: dict[str, str] = {}  # --vp8-extra: libvpx options over the media worker's


def transformed(pictures: list[np.ndarray], codec_psnr: dict | None = None) -> dict:
    """Every transformation's pictures; ``codec_psnr`` gets each codec's own PSNR (decoded
    against what it was given) over its first ``CODEC_START`` frames and after them."""
    from tests.provenance.support import CODECS, TRANSFORMS, decode_clip, encode_clip

    out = {name: [fn(p) for p in pictures] for name, fn in TRANSFORMS.items()}
    # At 300 kb/s the kiosk's adaptive resolution sends the 360p rung (media_engine/
    # adaptive.py): 480×360 for a 4:3 camera. The clip is encoded at that size.
    small = [cv2.resize(p, (480, 360), interpolation=cv2.INTER_AREA) for p in pictures]
    for name, (codec, kbps) in CODECS.items():
        out[name] = decode_clip(encode_clip(small, codec, kbps, VP8_EXTRA))
        if codec_psnr is not None:
            values = [psnr(a, b) for a, b in zip(out[name], small, strict=False)]
            codec_psnr[name] = {
                "first_frames_db": round(statistics.median(values[:CODEC_START]), 1),
                "later_db": round(statistics.median(values[CODEC_START:]), 1),
            }
    return out


def minute_change_rate(unmarked: list[np.ndarray], mark, found) -> dict:
    """The same frames marked again with the clock crossing a minute halfway (what every
    minute of a live stream goes through; the tag is the session's, so nothing may change),
    VP8 at 300 kb/s, each decoded frame on its own."""
    from media_engine.provenance.mark import SessionMark
    from tests.provenance.support import decode_clip, encode_clip

    state = {"index": 0}
    half = len(unmarked) // 2
    base = int(time.time() // 60)
    remark = SessionMark(
        mark.secret, mark.session_tag, clock=lambda: 60.0 * (base + (state["index"] >= half))
    )
    small = []
    for index, frame in enumerate(unmarked):
        state["index"] = index
        marked = remark.apply(frame.copy())
        small.append(cv2.resize(marked, (480, 360), interpolation=cv2.INTER_AREA))
    hits = [found(p) for p in decode_clip(encode_clip(small, "libvpx", 300, VP8_EXTRA))]
    missed = [i for i, hit in enumerate(hits) if not hit]
    return {"rate": round(float(np.mean(hits)), 4), "change_at": half, "missed": missed}


def embed_times(mark, frame: np.ndarray, repeats: int = 300) -> tuple[float, float]:
    """Median (wall ms, thread CPU ms) of marking a copy of ``frame`` on one thread."""
    cv2.setNumThreads(1)
    mark.apply(frame.copy())  # renders the pattern for this size once (once a minute)
    wall, cpu = [], []
    for _ in range(repeats):
        copy = frame.copy()
        start, start_cpu = time.perf_counter(), time.thread_time()
        mark.apply(copy)
        cpu.append((time.thread_time() - start_cpu) * 1000)
        wall.append((time.perf_counter() - start) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def false_positives(unmarked_pool: list[np.ndarray], keys: tuple) -> dict:
    """How many of the unmarked images verify as marked with ``keys``."""
    from media_engine.provenance.verify import verify_pictures

    false = sum(verify_pictures([p], keys).ai_generated for p in unmarked_pool)
    return {
        "false_positives": int(false),
        "false_positive_rate": round(false / len(unmarked_pool), 5),
    }


def ours(outputs, recorder, mark, false: dict, keys) -> dict:
    """Our mark's figures for one key on one presenter's frames (``false``: the key's
    ``false_positives``, the same for every presenter)."""
    from media_engine.provenance.verify import verify_pictures

    def found(picture) -> bool:
        finding = verify_pictures([picture], keys)
        return bool(
            finding.ai_generated
            and finding.payload is not None
            and finding.payload.session_tag == mark.session_tag
        )

    rates, misses, codec_psnr, codec_start = {}, {}, {}, {}
    for name, pictures in transformed(outputs, codec_psnr).items():
        hits = [found(p) for p in pictures]
        rates[name] = round(float(np.mean(hits)), 4)
        misses[name] = [i for i, hit in enumerate(hits) if not hit]
        if name in codec_psnr:
            codec_start[name] = {
                "missed_in_first_frames": sum(i < CODEC_START for i in misses[name]),
                "rate_after_first_frames": round(float(np.mean(hits[CODEC_START:])), 4),
                **codec_psnr[name],
            }
        print("ours", name, rates[name], "missed", misses[name][:40], file=sys.stderr, flush=True)
    change = minute_change_rate(recorder.unmarked, mark, found)
    print("ours vp8_300k across a minute change", change, file=sys.stderr, flush=True)
    wall, cpu = embed_times(mark, cv2.resize(recorder.unmarked[-1], (640, 480)))
    return {
        "detect_rate": rates,
        "detect_rate_min": min(*rates.values(), change["rate"]),
        "codec_start": codec_start,
        "vp8_300k_minute_change": change,
        **false,
        "psnr_db_min": round(min(map(psnr, recorder.marked, recorder.unmarked)), 2),
        "embed_ms_median": round(wall, 3),
        "embed_cpu_ms_median": round(cpu, 3),
    }


def worst_of(per_key: dict) -> dict:
    """The headline figures over all keys (the worst of each), with every key's own."""
    results = list(per_key.values())
    return {
        "detect_rate_min": min(r["detect_rate_min"] for r in results),
        "false_positive_rate": max(r["false_positive_rate"] for r in results),
        "psnr_db_min": min(r["psnr_db_min"] for r in results),
        "embed_ms_median": statistics.median(r["embed_ms_median"] for r in results),
        "embed_cpu_ms_median": statistics.median(r["embed_cpu_ms_median"] for r in results),
        "keys": len(results),
        "detect_rate_min_per_key": {name: r["detect_rate_min"] for name, r in per_key.items()},
        "per_key": per_key,
    }


def invisible_watermark(unmarked: list[np.ndarray], unmarked_pool: list[np.ndarray]) -> dict:
    embed_class = load_iw()
    bits = np.random.default_rng(3).integers(0, 2, IW_BITS).astype(bool)
    encoder = embed_class(watermarks=list(bits.astype(int)), wmLen=IW_BITS)
    decoder = embed_class(watermarks=[], wmLen=IW_BITS)
    times, marked = [], []
    for picture in unmarked:
        start = time.perf_counter()
        marked.append(encoder.encode(picture))
        times.append((time.perf_counter() - start) * 1000)

    def errors(picture) -> int:
        return int(np.sum(decoder.decode(picture) != bits))

    rates = {}
    for name, pictures in transformed(marked).items():
        rates[name] = round(float(np.mean([errors(p) <= IW_MAX_ERRORS for p in pictures])), 4)
        print("invisible-watermark", name, rates[name], file=sys.stderr, flush=True)
    false = sum(errors(p) <= IW_MAX_ERRORS for p in unmarked_pool)
    return {
        "detect_rate": rates,
        "detect_rate_min": min(rates.values()),
        "false_positives": int(false),
        "false_positive_rate": round(false / len(unmarked_pool), 5),
        "psnr_db_min": round(min(map(psnr, marked, unmarked)), 2),
        "embed_ms_median": round(statistics.median(times), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--natural", type=int, default=500, help="natural-image variants")
    parser.add_argument("--faces", type=Path, default=None, help="folder of talking-head clips")
    parser.add_argument("--iw-every", type=int, default=5, help="invisible-watermark: every Nth")
    parser.add_argument("--sheets", type=Path, default=None, help="write contact sheets here")
    parser.add_argument("--keys", type=int, default=3, help="keys to measure (made here)")
    parser.add_argument("--key-seed", default=None, help="make the keys from this (else random)")
    parser.add_argument(
        "--vp8-extra", default="", help="what-if: libvpx options over the media worker's (k=v,...)"
    )
    parser.add_argument("--floor", type=float, default=None, help="what-if: mark.FLOOR")
    parser.add_argument(
        "--presenters", default=",".join(PRESENTERS), help="whose frames (comma-separated)"
    )
    args = parser.parse_args()
    import django

    django.setup()
    if args.floor is not None:
        from media_engine.provenance import mark

        mark.FLOOR = args.floor
    if args.sheets is not None:
        from bench.provenance_sheets import SHEET_FRAME, write_sheets

        written = write_sheets(args.sheets, camera_frames(SHEET_FRAME + 1, args.faces), ROOT)
        print(json.dumps({"sheets": [str(p) for p in written], "frame": SHEET_FRAME}))
        return
    VP8_EXTRA.update(item.split("=", 1) for item in args.vp8_extra.split(",") if item)
    session_id, clock = bench_session(args.key_seed)
    cameras = camera_frames(args.frames, args.faces)
    presenters = [name for name in args.presenters.split(",") if name]
    unknown = sorted(set(presenters) - set(PRESENTERS))
    if unknown or not presenters:
        parser.error(f"--presenters: one or more of {', '.join(PRESENTERS)}, not {unknown}")
    fused = {name: pipeline_run(cameras, session_id, name) for name in presenters}
    unmarked = fused[presenters[0]]
    pool = [f for frames in fused.values() for f in frames] + cameras
    pool += natural_images(args.natural)
    size = f"{unmarked[0].shape[1]}x{unmarked[0].shape[0]}"
    print(f"{len(unmarked)} fused frames {size} of {', '.join(presenters)}, "
          f"{len(pool)} unmarked images", file=sys.stderr, flush=True)  # fmt: skip
    per_key = {}
    for key in bench_keys(max(1, args.keys), args.key_seed):
        print("key", fingerprint(key), file=sys.stderr, flush=True)
        false = false_positives(pool, (key,))
        for name, frames in fused.items():
            print("presenter", name, file=sys.stderr, flush=True)
            outputs, recorder, mark = marked_run(frames, key, session_id, clock)
            per_key[f"{name}/{fingerprint(key)}"] = ours(outputs, recorder, mark, false, (key,))
    result = worst_of(per_key)
    every = max(1, args.iw_every)  # its decoder is a Python loop: ~0.2 s a frame
    result["invisible_watermark"] = invisible_watermark(unmarked[::every], pool[::every])
    result.update(
        presenters=presenters,
        frames=len(unmarked),
        frame_size=size,
        unmarked_images=len(pool),
        faces=bool(args.faces and args.faces.is_dir()),
        vp8_extra_options=VP8_EXTRA,
        floor_what_if=args.floor,
        load_avg_1m=round(os.getloadavg()[0], 2),
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
