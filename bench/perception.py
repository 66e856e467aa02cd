"""Perception per frame: stage times of the tracked ``Perceiver`` against the stock approach
of running the detector and the mesh on every frame, one CPU thread (by default).

A moving sequence made from scikit-image's astronaut (shifts and small turns) at 640x480 and
1280x720. Wall-clock and thread CPU times (the CPU figure holds when other processes load the
machine). The last line is one JSON object:
``{"provider": ..., "threads": 1, "640x480": {"perception_ms_median": ..., ...,
"stock_ms_median": ..., "speedup": ...}, ...}``.

    python bench/perception.py [--frames 300] [--threads 1]
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def frames(size: tuple[int, int], count: int) -> list[np.ndarray]:
    import skimage.data

    w, h = size
    face = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    side = h
    canvas = np.full((h, w, 3), 90, np.uint8)
    x0 = (w - side) // 2
    canvas[:, x0 : x0 + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    out = []
    for i in range(count):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), 4 * np.sin(i / 9), 1.0)
        m[:, 2] += (0.03 * w * np.sin(i / 7), 0.02 * h * np.cos(i / 11))
        out.append(cv2.warpAffine(canvas, m, (w, h), borderMode=cv2.BORDER_REPLICATE))
    return out


def summary(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    os.environ["MEDIA_ENGINE_ORT_THREADS"] = str(args.threads)
    cv2.setNumThreads(args.threads)

    from media_engine import runtime
    from media_engine.perception.detector import FaceDetector
    from media_engine.perception.landmarks import FaceMesh, region_from_box
    from media_engine.perception.measures import measure
    from media_engine.perception.perceiver import Perceiver
    from media_engine.perception.tracker import pick_face

    detector, mesh = FaceDetector(), FaceMesh()
    report: dict[str, object] = {"threads": args.threads}
    for size in ((640, 480), (1280, 720)):
        sequence = frames(size, args.frames)
        warm_up = Perceiver(detector=detector, mesh=mesh)
        for frame in sequence[:20]:
            warm_up.process(frame)
        perceiver = Perceiver(detector=detector, mesh=mesh)
        totals, cpu, detect, marks, found = [], [], [], [], 0
        for i, frame in enumerate(sequence):
            cpu_start = time.thread_time()
            face = perceiver.process(frame, timestamp=i / 30)
            cpu.append((time.thread_time() - cpu_start) * 1000)
            found += face is not None
            t = perceiver.timings
            totals.append(t.total_ms)
            detect.append(t.detect_ms)
            marks.append(t.landmarks_ms)
        # Stock: detector and mesh on every frame, no tracking, no smoothing.
        stock, stock_cpu = [], []
        for frame in sequence:
            start, cpu_start = time.perf_counter(), time.thread_time()
            best = pick_face(detector.detect(frame), size[0], size[1])
            if best is not None:
                result = mesh.run(frame, region_from_box(best.box, best.right_eye, best.left_eye))
                measure(result.landmarks)
            stock.append((time.perf_counter() - start) * 1000)
            stock_cpu.append((time.thread_time() - cpu_start) * 1000)
        med, p95 = summary(totals)
        stock_med, stock_p95 = summary(stock)
        report[f"{size[0]}x{size[1]}"] = {
            "perception_ms_median": round(med, 3),
            "perception_ms_p95": round(p95, 3),
            # CPU time of the calling thread (ONNX Runtime runs there with one thread): what
            # the stage costs, even when other processes share the cores.
            "perception_cpu_ms_median": round(summary(cpu)[0], 3),
            "landmarks_ms_median": round(summary(marks)[0], 3),
            "detector_runs": perceiver.detector_calls,
            "frames": len(sequence),
            "faces_found": found,
            "stock_ms_median": round(stock_med, 3),
            "stock_ms_p95": round(stock_p95, 3),
            "stock_cpu_ms_median": round(summary(stock_cpu)[0], 3),
            "speedup": round(stock_med / med, 2) if med else None,
            "speedup_cpu": round(summary(stock_cpu)[0] / summary(cpu)[0], 2) if cpu else None,
        }
    report["provider"] = runtime.provider_in_use()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
