"""The fusion pipeline per frame, stage by stage, for each engine, on one CPU thread.

Stages as the media worker runs them, through its own ``FramePipeline`` (``media_engine/
pipeline.py``, at the camera's size): colour conversion (the decoded yuv420p frame to BGR and
the fused BGR back to yuv420p), perception (``Perceiver``), the engine's ``render`` and the
label with the provenance mark. Frames: the expression-fidelity sequence (scikit-image's
astronaut turning, blinking, opening the mouth; ``tests/fidelity.py``) centred in 640x480 and
1280x720 frames.

The stock baseline in the same run: the stock single-sheet avatar (the default portrait moved
by landmark offsets) rendered with the naive piecewise-affine warp, one ``cv2.warpAffine`` per
mesh triangle (``warp_per_triangle``), on the same frames. The render graph
(``render_graph.py``, what runs on CUDA for ``swap``) is timed on ONNX Runtime's CPU provider
too, against the OpenCV render step the engines use on a CPU (the layered avatar renders with
OpenCV only). The
expression-fidelity correlations (input vs output eye openness, mouth opening, head turn) are
measured too. Wall-clock and thread CPU times (the CPU figure holds when other processes load
the machine). Last line: one JSON object, ``{"provider": ..., "avatar_640x480":
{"total_ms_median": ..., "total_ms_p95": ..., "perception_ms_median": ..., ...}, ...}``.

    python bench/pipeline.py [--frames 200] [--engines avatar,swap,blur,label]
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

# One thread everywhere, before numpy, OpenCV or ONNX Runtime start theirs.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
os.environ.setdefault("MEDIA_ENGINE_ORT_THREADS", "1")
# The provenance mark's key comes from the settings (the embedded default's key file).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kiosk.settings")

import av  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from media_engine.engines import face_regions as fr  # noqa: E402
from media_engine.engines.portraits import default_avatar  # noqa: E402
from media_engine.engines.registry import create_engine  # noqa: E402
from media_engine.engines.retarget import Retarget  # noqa: E402
from media_engine.engines.warp import apply_affine, compose, warp_per_triangle  # noqa: E402
from media_engine.perception import Perceiver  # noqa: E402
from media_engine.pipeline import FramePipeline  # noqa: E402
from tests.fidelity import measure_fidelity, sequence  # noqa: E402

SIZES = ((640, 480), (1280, 720))


# The bench's stages: the pipeline's own, grouped (convert: to BGR, scaling and back to
# yuv420p; label: the visible label and the provenance mark).
STAGES = ("convert", "perception", "engine", "label", "total")


def stats(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, float)
    return round(float(np.median(a)), 3), round(float(np.percentile(a, 95)), 3)


def astronaut_sequence() -> tuple[list[np.ndarray], np.ndarray]:
    import skimage.data

    image = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    perceiver = Perceiver()
    face = None
    for i in range(4):
        face = perceiver.process(image, timestamp=i / 30)
    frames, _ = sequence(image, face.landmarks)
    return frames, image


def in_frame(square: np.ndarray, size: tuple[int, int]) -> av.VideoFrame:
    """The square picture centred in a frame of ``size``, as a decoded yuv420p frame."""
    w, h = size
    canvas = np.full((h, w, 3), 90, np.uint8)
    x0 = (w - h) // 2
    canvas[:, x0 : x0 + h] = cv2.resize(square, (h, h), interpolation=cv2.INTER_AREA)
    return av.VideoFrame.from_ndarray(canvas, format="bgr24").reformat(format="yuv420p")


class Clock:
    """Wall and thread-CPU milliseconds of a block."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.thread_time()
        return self

    def __exit__(self, *exc):
        self.wall_ms = (time.perf_counter() - self.wall) * 1000
        self.cpu_ms = (time.thread_time() - self.cpu) * 1000


def run_engine(
    name: str, frames: list[av.VideoFrame], count: int, graph_on_cpu: bool = False
) -> dict:
    """``count`` frames through the media worker's own ``FramePipeline`` (``media_engine/
    pipeline.py``): its stage times per frame (``last_times``), and the thread CPU and wall
    time of each whole ``process`` call."""
    engine = create_engine(name)
    if graph_on_cpu:  # the render graph the GPU runs, here on ONNX Runtime's CPU provider
        from media_engine.engines.render_graph import OnnxRenderer

        r = engine.renderer
        engine.renderer = OnnxRenderer(
            r.source, lab=r.lab, blend=r.blend, providers=["CPUExecutionProvider"]
        )
    pipeline = FramePipeline(engine, session_id="bench")
    if name != "label":  # as media_engine/assembly.py builds it (fixed size: no ladder here)
        perceiver, clock = Perceiver(), iter(range(1 << 30))
        pipeline.perceive = lambda bgr: perceiver.process(bgr, timestamp=next(clock) / 30)
    times: dict[str, list[float]] = {k: [] for k in (*STAGES, "total_cpu")}
    for i in range(count):
        frame = frames[i % len(frames)]
        t0c = time.thread_time()
        pipeline.process(frame, fusion_allowed=True)
        times["total_cpu"].append((time.thread_time() - t0c) * 1000)
        last = pipeline.last_times
        times["convert"].append(last["to_bgr"] + last.get("scale", 0.0) + last["to_frame"])
        times["perception"].append(last.get("perceive", 0.0))
        times["engine"].append(last["render"])
        times["label"].append(last["label"])
        times["total"].append(last["total"])
    out = {}
    for stage, values in times.items():
        median, p95 = stats(values[5:])  # the first frames detect and warm up
        out[f"{stage}_ms_median"] = median
        out[f"{stage}_ms_p95"] = p95
    return out


def placement(portrait: np.ndarray, width: int, height: int) -> np.ndarray:
    """The similarity fitting a portrait into a frame (centred, whole height)."""
    ph, pw = portrait.shape[:2]
    scale = min(height / ph, width / pw)
    return np.array(
        [[scale, 0.0, (width - pw * scale) / 2], [0.0, scale, (height - ph * scale) / 2]]
    )


def run_baseline(frames: list[av.VideoFrame], count: int) -> dict:
    """The stock avatar: the default portrait as one sheet, moved by the visitor's landmark
    offsets (``Retarget``) and warped one ``cv2.warpAffine`` per triangle (same frames)."""
    avatar = default_avatar()
    retarget = Retarget(avatar.landmarks[:, :2])
    points = avatar.landmarks[:, :2].astype(np.float64)
    perceiver = Perceiver()
    triangles = fr.render_triangles()
    source = avatar.image
    ms = []
    for i in range(count):
        bgr = frames[i % len(frames)].to_ndarray(format="bgr24")
        face = perceiver.process(bgr, timestamp=i / 30)
        if face is None:
            continue
        h, w = bgr.shape[:2]
        with Clock() as c:
            motion = retarget.update(face.landmarks)
            place = placement(source, w, h)
            out = cv2.warpAffine(
                source, compose(place, motion.head), (w, h), borderMode=cv2.BORDER_REPLICATE
            )
            warp_per_triangle(source, points, apply_affine(place, motion.points),
                              triangles, out)  # fmt: skip
        ms.append(c.wall_ms)
    median, p95 = stats(ms[5:])
    return {"engine_ms_median": median, "engine_ms_p95": p95}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--engines", default="avatar,swap,blur,label")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    engines = [e for e in args.engines.split(",") if e]

    squares, _ = astronaut_sequence()
    from media_engine.runtime import available_providers

    result: dict = {"provider": available_providers()[0], "threads": 1}
    from media_engine.engines.render_graph import make_renderer

    result["render_step"] = type(make_renderer(squares[0], lab=False, blend=False)).__name__
    for size in SIZES:
        frames = [in_frame(s, size) for s in squares]
        key = f"{size[0]}x{size[1]}"
        for name in engines:
            entry = run_engine(name, frames, args.frames)
            result[f"{name}_{key}"] = entry
            print(f"{name:8s} {key:9s} " + "  ".join(
                f"{k.replace('_ms_median', '')} {v:.2f}" for k, v in entry.items()
                if k.endswith("median")
            ), flush=True)  # fmt: skip
        for name in [e for e in engines if e == "swap"]:  # the layered avatar: OpenCV only
            graph = run_engine(name, frames, min(args.frames, 60), graph_on_cpu=True)
            result[f"{name}_{key}_render_graph_on_cpu"] = {
                k: v for k, v in graph.items() if k.startswith("engine")
            }
            print(f"{name:8s} {key:9s} render graph on ORT CPU: engine "
                  f"{graph['engine_ms_median']:.2f} ms", flush=True)  # fmt: skip
        baseline = run_baseline(frames, min(args.frames, 60))
        result[f"baseline_per_triangle_warp_{key}"] = baseline
        if f"avatar_{key}" in result:
            ours = result[f"avatar_{key}"]["engine_ms_median"]
            baseline["speedup_vs_avatar_engine"] = round(baseline["engine_ms_median"] / ours, 1)
            baseline["avatar_total_ms_median"] = result[f"avatar_{key}"]["total_ms_median"]
        print(f"baseline {key:9s} per-triangle warp engine {baseline['engine_ms_median']:.2f} ms",
              flush=True)  # fmt: skip

    correlations = {}
    for name in [e for e in engines if e in ("avatar", "swap", "blur")]:
        engine = create_engine(name)
        clocks = [iter(range(1 << 30)), iter(range(1 << 30))]
        pin, pout = Perceiver(), Perceiver(smoothing=False)
        fid = measure_fidelity(
            squares,
            lambda f, p=pin, c=clocks[0]: p.process(f, timestamp=next(c) / 30),
            engine.render,
            lambda f, p=pout, c=clocks[1]: p.process(f, timestamp=next(c) / 30),
        )
        correlations[name] = {
            "eye": round(fid.eye, 3),
            "mouth": round(fid.mouth, 3),
            "yaw": round(fid.yaw, 3),
            "frames_with_face": fid.frames_with_face,
            "frames": len(squares),
        }
    result["fidelity_correlation"] = correlations
    print(json.dumps(result))


if __name__ == "__main__":
    main()
