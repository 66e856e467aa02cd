"""Reproduce the face models under models/ from the PyPI wheel mediapipe==0.10.14.

Not run by CI, and not by the service: it runs once, by hand, in a throwaway virtualenv that
is NOT the project's (the converter needs TensorFlow only while converting):

    python3.11 -m venv /tmp/convert-venv
    /tmp/convert-venv/bin/pip install tf2onnx==1.17.0 tensorflow-cpu==2.19.0 \
        onnxruntime==1.31.1 opencv-python-headless==4.10.0.84 scikit-image==0.26.0
    /tmp/convert-venv/bin/pip download --no-deps mediapipe==0.10.14 -d /tmp/mp
    /tmp/convert-venv/bin/python models/scripts/convert_mediapipe.py \
        --wheel /tmp/mp/mediapipe-0.10.14-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl

What it does:
1. takes `face_detection_short_range.tflite` and `face_landmark.tflite` out of the wheel and
   converts each with `tf2onnx --tflite ... --opset 13`, then rewrites each PRelu as
   a*x + (1-a)*Relu(x) (the same function; ONNX Runtime runs it 2.5 times faster);
2. checks the ONNX models against the tflite originals (TensorFlow Lite interpreter) on real
   face images (scikit-image's astronaut: crops, scales, rotations) and prints the largest
   landmark difference in pixels and the largest detector output difference;
3. builds `face_mesh_topology.npz`: the mesh triangles (from the ordered triangle edges of
   `mediapipe/python/solutions/face_mesh_connections.py`'s FACEMESH_TESSELATION in the same
   wheel), the left/right mirror map of the 468 points, and canonical 3D points. The wheel does
   not ship MediaPipe's canonical_face_model.obj, so the canonical points are the converted
   landmark model's own 3D output on the astronaut's face, made left/right symmetric (averaged
   with its mirror image) and expressed in a face frame: x towards the image's right (the
   visitor's left), y down, z away from the camera, origin at the points' centroid, scaled so
   the outer eye corners (33, 263) are 9.0 units (about centimetres) apart;
4. writes the files into models/ and their entries (sha256, source, licence) into
   models/manifest.json.

MediaPipe is Apache-2.0 (Copyright The MediaPipe Authors).
"""

import argparse
import ast
import hashlib
import json
import math
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from media_engine.perception import detector, landmarks  # noqa: E402

VERSION = "0.10.14"
WHEEL_SOURCE = f"PyPI mediapipe=={VERSION}"
LICENCE = "Apache-2.0 (The MediaPipe Authors)"
MODELS = {
    "face_detection_short_range": (
        "mediapipe/modules/face_detection/face_detection_short_range.tflite"
    ),
    "face_landmark": "mediapipe/modules/face_landmark/face_landmark.tflite",
}
CONNECTIONS = "mediapipe/python/solutions/face_mesh_connections.py"
MIDLINE = [10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 164, 0, 11, 12, 13, 14, 15, 16,
           17, 18, 200, 199, 175, 152]  # fmt: skip


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def convert(tflite: Path, onnx_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "tf2onnx.convert", "--tflite", str(tflite), "--opset", "13",
         "--output", str(onnx_path)],
        check=True,
    )  # fmt: skip


def rewrite_prelu(onnx_path: Path) -> int:
    """Replace each PRelu(x, a) by a*x + (1-a)*Relu(x): the same function (exactly, up to
    float rounding), but ONNX Runtime's CPU provider runs PRelu through a slow generic
    broadcast and keeps the tensors out of its blocked (NCHWc) layout around it; the rewrite
    makes the face landmark model about 2.5 times faster on one thread."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    nodes, added, count = [], [], 0
    for node in graph.node:
        if node.op_type != "PRelu" or node.input[1] not in initializers:
            nodes.append(node)
            continue
        x, slope_name = node.input
        y = node.output[0]
        slope = numpy_helper.to_array(initializers[slope_name]).astype(np.float32)
        slope = slope.reshape(-1, 1, 1)  # per channel, NCHW
        added += [
            numpy_helper.from_array(slope, f"{y}__slope"),
            numpy_helper.from_array((1.0 - slope).astype(np.float32), f"{y}__one_minus_slope"),
        ]
        nodes += [
            helper.make_node("Relu", [x], [f"{y}__relu"], name=f"{node.name}__relu"),
            helper.make_node("Mul", [x, f"{y}__slope"], [f"{y}__ax"], name=f"{node.name}__ax"),
            helper.make_node("Mul", [f"{y}__relu", f"{y}__one_minus_slope"], [f"{y}__br"],
                             name=f"{node.name}__br"),
            helper.make_node("Add", [f"{y}__ax", f"{y}__br"], [y], name=f"{node.name}__add"),
        ]  # fmt: skip
        count += 1
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(added)
    used = {name for n in graph.node for name in n.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.checker.check_model(model)
    onnx.save(model, str(onnx_path))
    return count


def astronaut() -> np.ndarray:
    import skimage.data

    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)


class Tflite:
    def __init__(self, path: Path):
        import tensorflow as tf

        self.interpreter = tf.lite.Interpreter(model_path=str(path))
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.outputs = {d["name"]: d["index"] for d in self.interpreter.get_output_details()}

    def run(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        self.interpreter.set_tensor(self.input, tensor)
        self.interpreter.invoke()
        return {name: self.interpreter.get_tensor(i) for name, i in self.outputs.items()}


def onnx_run(session: ort.InferenceSession, tensor: np.ndarray) -> dict[str, np.ndarray]:
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {session.get_inputs()[0].name: tensor}), strict=True))


def find_face(det: ort.InferenceSession, mesh: ort.InferenceSession, bgr: np.ndarray):
    """The astronaut's landmarks (468, 3) in frame pixels and the final region."""
    tensor, scale, off_x, off_y = detector.letterbox(bgr)
    out = onnx_run(det, tensor)
    boxes, kps, scores = detector.decode(out["regressors"], out["classificators"])
    box, kp, _ = detector.weighted_nms(boxes, kps, scores)[0]
    box = (box * detector.INPUT_SIZE - [off_x, off_y, off_x, off_y]) / scale
    kp = (kp * detector.INPUT_SIZE - [off_x, off_y]) / scale
    region = landmarks.region_from_box(
        (box[0], box[1], box[2] - box[0], box[3] - box[1]), kp[0], kp[1]
    )
    for _ in range(4):
        pts = mesh_points(mesh, bgr, region)
        region = landmarks.region_from_landmarks(pts)
    return mesh_points(mesh, bgr, region), region


def mesh_points(mesh: ort.InferenceSession, bgr: np.ndarray, region) -> np.ndarray:
    out = onnx_run(mesh, landmarks.crop(bgr, region))
    raw = next(v for v in out.values() if v.size == 1404).reshape(468, 3).astype(np.float64)
    m = region.crop_to_frame()
    return np.c_[raw[:, :2] @ m[:, :2].T + m[:, 2], raw[:, 2] * region.size / 192]


def check_against_tflite(tflite: dict[str, Path], onnx: dict[str, Path]) -> dict[str, float]:
    """Largest differences between the ONNX models and the tflite originals on real images."""
    det_t = Tflite(tflite["face_detection_short_range"])
    mesh_t = Tflite(tflite["face_landmark"])
    det_o = ort.InferenceSession(str(onnx["face_detection_short_range"]))
    mesh_o = ort.InferenceSession(str(onnx["face_landmark"]))
    image = astronaut()
    _, base = find_face(det_o, mesh_o, image)
    worst_crop_px = worst_frame_px = worst_presence = 0.0
    worst_det: dict[str, float] = {}
    cases = 0
    for angle_deg in (-20, -10, 0, 10, 20):
        for scale in (0.8, 1.0, 1.25):
            for shift in ((0, 0), (8, -6), (-10, 12)):
                region = landmarks.Region(
                    cx=base.cx + shift[0],
                    cy=base.cy + shift[1],
                    size=base.size * scale,
                    angle=base.angle + math.radians(angle_deg),
                )
                tensor = landmarks.crop(image, region)
                a, b = mesh_t.run(tensor), onnx_run(mesh_o, tensor)
                la = next(v for v in a.values() if v.size == 1404).reshape(468, 3)
                lb = next(v for v in b.values() if v.size == 1404).reshape(468, 3)
                crop_px = float(np.abs(la[:, :2] - lb[:, :2]).max())
                worst_crop_px = max(worst_crop_px, crop_px)
                worst_frame_px = max(worst_frame_px, crop_px * region.size / 192)
                pa = next(v for v in a.values() if v.size == 1).item()
                pb = next(v for v in b.values() if v.size == 1).item()
                worst_presence = max(worst_presence, abs(pa - pb))
                cases += 1
    for angle_deg in (-20, 0, 20):
        for scale in (0.5, 1.0):
            h, w = image.shape[:2]
            m = cv2.getRotationMatrix2D((w / 2, h / 2), angle_deg, scale)
            frame = cv2.warpAffine(image, m, (w, h))
            tensor, *_ = detector.letterbox(frame)
            a, b = det_t.run(tensor), onnx_run(det_o, tensor)
            for name in b:
                key = next(k for k in a if a[k].shape == b[name].shape)
                diff = float(np.abs(a[key] - b[name]).max())
                worst_det[name] = max(worst_det.get(name, 0.0), diff)
    return {
        "landmark_cases": cases,
        "landmark_max_diff_crop_px": worst_crop_px,
        "landmark_max_diff_frame_px": worst_frame_px,
        "presence_logit_max_diff": worst_presence,
        # regressors are in the 128-px input's pixels, classificators are logits
        **{f"detector_{name}_max_abs_diff": v for name, v in worst_det.items()},
    }


def mesh_triangles(connections_source: str) -> np.ndarray:
    """Triangles of the face mesh. FACEMESH_TESSELATION lists each triangle's three edges one
    after another ((a, b), (b, c), (c, a)); the frozenset loses that order, the source keeps
    it, so the source is parsed."""
    for node in ast.parse(connections_source).body:
        if isinstance(node, ast.Assign) and node.targets[0].id == "FACEMESH_TESSELATION":
            edges = ast.literal_eval(node.value.args[0])
            break
    else:
        raise SystemExit("FACEMESH_TESSELATION not found")
    triangles = []
    for i in range(0, len(edges), 3):
        (a, b), (b2, c), (c2, a2) = edges[i : i + 3]
        if not (b == b2 and c == c2 and a == a2):
            raise SystemExit(f"edges {i}..{i + 2} do not form a triangle: {edges[i : i + 3]}")
        triangles.append((a, b, c))
    tri = np.array(triangles, np.int32)
    if len({tuple(sorted(t)) for t in triangles}) != len(triangles):
        raise SystemExit("duplicate triangles")
    return tri


def mirror_map(points: np.ndarray) -> np.ndarray:
    """For each point, its mirror image across the face's midline (an involution)."""
    from scipy.optimize import linear_sum_assignment

    centre = points[MIDLINE].mean(0)
    normal = np.linalg.svd(points[MIDLINE] - centre)[2][2]
    reflected = points - 2 * ((points - centre) @ normal)[:, None] * normal
    cost = np.linalg.norm(points[:, None, :] - reflected[None, :, :], axis=2)
    _, mirror = linear_sum_assignment(cost)
    if not (mirror[mirror] == np.arange(len(points))).all():
        raise SystemExit("mirror map is not an involution")
    if set(np.flatnonzero(mirror == np.arange(len(points)))) != set(MIDLINE):
        raise SystemExit("mirror map's fixed points are not the midline")
    for a, b in ((33, 263), (133, 362), (61, 291), (159, 386), (234, 454)):
        if mirror[a] != b:
            raise SystemExit(f"mirror of {a} is {mirror[a]}, not {b}")
    return mirror.astype(np.int32)


def canonical_points(points: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """The face made symmetric, in the face frame described in the module docstring."""
    centre = points[MIDLINE].mean(0)
    normal = np.linalg.svd(points[MIDLINE] - centre)[2][2]
    if (points[263] - points[33]) @ normal < 0:
        normal = -normal
    reflected = points - 2 * ((points - centre) @ normal)[:, None] * normal
    symmetric = (points + reflected[mirror]) / 2
    x = normal
    y = np.array([0.0, 1.0, 0.0]) - x[1] * x
    y /= np.linalg.norm(y)
    z = np.cross(x, y)
    basis = np.stack([x, y, z])
    local = (symmetric - symmetric.mean(0)) @ basis.T
    local *= 9.0 / np.linalg.norm(local[263] - local[33])
    local[mirror == np.arange(len(points)), 0] = 0.0
    if local[1, 2] >= 0:  # the nose tip must point at the camera (negative z)
        raise SystemExit("nose tip does not point at the camera")
    return local.astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, required=True, help="mediapipe 0.10.14 wheel")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    args = parser.parse_args()
    models_dir: Path = args.models_dir

    with tempfile.TemporaryDirectory() as tmp_name, zipfile.ZipFile(args.wheel) as wheel:
        tmp = Path(tmp_name)
        tflite = {}
        onnx = {}
        for name, inner in MODELS.items():
            tflite[name] = tmp / Path(inner).name
            tflite[name].write_bytes(wheel.read(inner))
            onnx[name] = models_dir / f"{name}.onnx"
            convert(tflite[name], onnx[name])
            print(f"{name}: {rewrite_prelu(onnx[name])} PRelu rewritten")
        connections = wheel.read(CONNECTIONS).decode()
        report = check_against_tflite(tflite, onnx)
    print(json.dumps(report, indent=1))
    if report["landmark_max_diff_frame_px"] > 0.01:
        raise SystemExit("ONNX landmarks differ from the tflite model's by more than 0.01 px")

    triangles = mesh_triangles(connections)
    det = ort.InferenceSession(str(onnx["face_detection_short_range"]))
    mesh = ort.InferenceSession(str(onnx["face_landmark"]))
    points, _ = find_face(det, mesh, astronaut())
    mirror = mirror_map(points)
    canonical = canonical_points(points, mirror)
    topology = models_dir / "face_mesh_topology.npz"
    with topology.open("wb") as f:  # np.savez with fixed order; no timestamps inside
        np.savez(f, triangles=triangles, canonical_points=canonical, mirror=mirror)
    print(f"{len(triangles)} triangles, canonical points span {np.ptp(canonical, 0)}")

    manifest_path = models_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    entries = {e["name"]: e for e in manifest["files"]}
    for name, inner in MODELS.items():
        entries[name] = {
            "name": name,
            "path": f"{name}.onnx",
            "sha256": sha256(onnx[name]),
            "source": f"{WHEEL_SOURCE}, path inside the wheel {inner}; converted with "
            "tf2onnx 1.17.0 --tflite --opset 13, PRelu rewritten as a*x+(1-a)*Relu(x), "
            "by models/scripts/convert_mediapipe.py",
            "version": VERSION,
            "licence": LICENCE,
        }
    entries["face_mesh_topology"] = {
        "name": "face_mesh_topology",
        "path": "face_mesh_topology.npz",
        "sha256": sha256(topology),
        "source": f"{WHEEL_SOURCE}: triangles from {CONNECTIONS} (FACEMESH_TESSELATION); "
        "canonical points from the converted face_landmark model on scikit-image's astronaut, "
        "made symmetric, by models/scripts/convert_mediapipe.py",
        "version": VERSION,
        "licence": LICENCE,
    }
    manifest["files"] = list(entries.values())
    manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {', '.join(sorted(entries))} into {manifest_path}")


if __name__ == "__main__":
    main()
