"""How faithfully the avatar follows real visitors in motion, read back with our perception.

For each talking-head clip in ``--clips`` (default ``../shared/faces`` when it exists): each
frame placed in a 640x480 picture with the face about a third of the height, (1) plain and
(2) with added motion (pan ±15 % of the width, roll ±15°, scale ±15 %, at unrelated
rhythms), and (3) one sequence that cuts between the clips (a new person every few
seconds). The avatar engine renders each frame from the input's perception, as in a
session; perception then runs again on the avatar's output. Per run: the correlation
between the input's and the output's yaw, pitch, roll, mouth opening and eye closure;
output frames without a face; folded triangles drawn; the share of frames with the
avatar's head wholly inside the picture; the share of the torso (outside the neck) left
unchanged. Contact sheets (input | output) go to ``--sheets DIR`` when given. Last line:
one JSON object with ``min_corr_yaw``, ``min_corr_pitch``, ``min_corr_roll``,
``min_corr_mouth``, ``min_corr_eyes`` (clips that blink), ``foldovers``,
``head_in_frame_min``, ``torso_intact_min``, ``frames_without_face``, ``clips``.

``--split`` says where a run's pose read-back error comes from (three times the time): each
run's line gains ``split``, with ``pose_only`` (the correlations of yaw, pitch and roll
when the avatar is drawn in each frame's pose without its expressions) and
``expression_only_sd`` (degrees: the spread of the pose read back from the avatar held
still while it shows each frame's expressions). The targets are measured as above.

    python bench/fidelity.py [--clips DIR] [--sheets DIR] [--frames 200] [--presenter SLUG|DIR]
                             [--split]
"""

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
os.environ.setdefault("MEDIA_ENGINE_ORT_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from media_engine.engines import face_regions as fr  # noqa: E402
from media_engine.engines import rig as rg  # noqa: E402
from media_engine.engines.registry import create_engine  # noqa: E402
from media_engine.perception import Perceiver  # noqa: E402

W, H = 640, 480
FACE_SHARE = 1 / 3
DEFAULT_CLIPS = ROOT.parent / "shared" / "faces"
CUT_EVERY = 60  # frames per person in the cut sequence
# A clip "blinks" when its eye openness spans at least this much.
BLINK_SPAN = 0.05
SHEET_TILES = 12


def read_clip(path: Path, limit: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < limit:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def face_scale(frames: list[np.ndarray]) -> float:
    """The scale that makes the clip's face a third of 480 pixels tall."""
    perceiver = Perceiver()
    heights = []
    for i, frame in enumerate(frames[:10]):
        face = perceiver.process(frame, timestamp=i / 30)
        if face is not None:
            heights.append(face.box[3])
    if not heights:
        raise SystemExit("no face found in the first frames of a clip")
    return FACE_SHARE * H / float(np.median(heights))


def motion(i: int) -> tuple[float, float, float]:
    """Pan (share of width), roll (degrees), scale factor at frame ``i``."""
    return (0.15 * np.sin(2 * np.pi * i / 97), 15 * np.sin(2 * np.pi * i / 61 + 1.0),
            1 + 0.15 * np.sin(2 * np.pi * i / 43 + 2.0))  # fmt: skip


def place(frame: np.ndarray, scale: float, pan=0.0, roll=0.0, zoom=1.0) -> np.ndarray:
    h, w = frame.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), -roll, scale * zoom)
    m[:, 2] += [W / 2 - w / 2 + pan * W, H / 2 - h / 2]
    fill = tuple(int(v) for v in np.median(frame[:4].reshape(-1, 3), axis=0))
    return cv2.warpAffine(frame, m, (W, H), borderMode=cv2.BORDER_CONSTANT, borderValue=fill)


@dataclass
class Run:
    name: str
    rows: list = field(default_factory=list)
    no_face: int = 0
    folded: int = 0
    head_in: list = field(default_factory=list)
    torso: list = field(default_factory=list)
    tiles: list = field(default_factory=list)
    drawn: list = field(default_factory=list)  # (pose, values) of the frames in ``rows``
    split: dict = field(default_factory=dict)


def _measures(face) -> tuple:
    m = face.measures
    return (m.yaw, m.pitch, m.roll, m.mouth_open, (m.left_eye_open + m.right_eye_open) / 2)


def torso_mask(engine) -> np.ndarray:
    fit = engine.fitted(W, H)
    mask = fit.torso[1] > 128
    x0, y0, x1, y1 = fit.neck_box
    pad = int(0.05 * W)
    mask[max(0, y0 - pad) : y1 + pad, max(0, x0 - pad) : x1 + pad] = False
    return mask


def make_engine(presenter: str | None):
    """The avatar engine: the default identity's, or a presenter (a slug, or a folder)."""
    if presenter is None:
        return create_engine("avatar")
    from media_engine.engines.avatar import AvatarEngine
    from media_engine.engines.presenter import load_presenter, read_presenter

    folder = Path(presenter)
    return AvatarEngine(read_presenter(folder) if folder.is_dir() else load_presenter(presenter))


def folded(engine, posed) -> int:
    """Drawn triangles folded by the pose: showing their back (every triangle of the rig is
    wound alike: a front-facing one's signed area has the sign ``face_regions.FRONT``)
    without lying as in the presenter's own picture (whose folds, at the face's sides and
    the nose's wings, are drawn as they are)."""
    now = np.sign(fr.signed_areas(posed.points, posed.triangles))
    rest = np.sign(fr.signed_areas(engine.fitted(W, H).rest, posed.triangles))
    return int(((now != fr.FRONT) & (now != rest)).sum())


def run(name: str, frames: list[np.ndarray], sheet_every: int, presenter=None, split=False) -> Run:
    engine = make_engine(presenter)
    rest = engine.render(np.zeros((H, W, 3), np.uint8), None)
    torso = torso_mask(engine)
    perceive_in, perceive_out = Perceiver(), Perceiver(smoothing=False)
    result = Run(name)
    for i, frame in enumerate(frames):
        face_in = perceive_in.process(frame, timestamp=i / 30)
        out = engine.render(frame, face_in)
        face_out = perceive_out.process(out, timestamp=i / 30)
        posed = engine.last
        if face_out is None:
            result.no_face += 1
        if face_in is not None and face_out is not None:
            result.rows.append(_measures(face_in) + _measures(face_out))
            result.drawn.append(engine.drawn_with)
        if posed is not None:
            result.folded += folded(engine, posed)
            p = posed.points
            result.head_in.append(bool((p >= 0).all() and (p[:, 0] <= W).all()
                                       and (p[:, 1] <= H).all()))  # fmt: skip
        changed = np.abs(out.astype(np.int16) - rest).max(axis=2) > 2
        result.torso.append(1.0 - float(changed[torso].mean()))
        if i % sheet_every == 0 and len(result.tiles) < SHEET_TILES:
            result.tiles.append(np.hstack([cv2.resize(f, (W // 2, H // 2)) for f in (frame, out)]))
    if split:
        result.split = split_readback(engine, result)
    return result


def _read_back(engine, drawn: list) -> np.ndarray:
    """Yaw, pitch, roll read back (as in ``run``) from the avatar drawn as ``drawn`` says."""
    perceiver, angles = Perceiver(smoothing=False), []
    for i, (pose, values) in enumerate(drawn):
        face = perceiver.process(engine.draw(W, H, pose, values), timestamp=i / 30)
        angles.append(_measures(face)[:3] if face is not None else (np.nan,) * 3)
    return np.array(angles, float).reshape(-1, 3)


def split_readback(engine, r: Run) -> dict:
    """Where the pose read-back's error comes from (``--split``). ``pose_only``: the input's
    yaw, pitch and roll against the avatar drawn in each frame's pose with no expression;
    ``expression_only_sd``: the spread (degrees) of the pose read back from the avatar held
    still (each frame's offset, no turn) showing each frame's expressions, which the
    read-back adds to the turn it is shown."""
    rest = np.zeros(len(rg.FEATURES))
    posed = _read_back(engine, [(pose, rest) for pose, _ in r.drawn])
    still = _read_back(
        engine, [(rg.Pose(0.0, 0.0, 0.0, pose.offset), values) for pose, values in r.drawn]
    )
    rows = np.array(r.rows).reshape(-1, 10)
    axes = ("yaw", "pitch", "roll")
    ok = np.isfinite(posed).all(axis=1)
    return {
        "pose_only": {k: round(pearson(rows[ok, j], posed[ok, j]), 3) for j, k in enumerate(axes)},
        "expression_only_sd": {
            k: round(float(np.nanstd(still[:, j])), 2) for j, k in enumerate(axes)
        },
    }


def pearson(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 3 or a.std() < 1e-9 or b.std() < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def summary(r: Run) -> dict:
    rows = np.array(r.rows).reshape(-1, 10)
    keys = ("yaw", "pitch", "roll", "mouth", "eyes")
    out = {f"corr_{k}": round(pearson(rows[:, j], rows[:, 5 + j]), 3) for j, k in enumerate(keys)}
    out["input_span"] = {k: round(float(np.ptp(rows[:, j])), 3) if len(rows) else 0.0
                         for j, k in enumerate(keys)}  # fmt: skip
    out["blinks"] = bool(len(rows) and np.ptp(np.percentile(rows[:, 4], [3, 97])) > BLINK_SPAN)
    out.update(frames=len(r.torso), frames_without_face=r.no_face, foldovers=r.folded,
               head_in_frame=round(float(np.mean(r.head_in)) if r.head_in else 0.0, 4),
               torso_intact=round(float(np.min(r.torso)) if r.torso else 0.0, 4))  # fmt: skip
    if r.split:
        out["split"] = r.split
    return out


def write_sheet(r: Run, folder: Path) -> None:
    tiles = r.tiles + [np.zeros_like(r.tiles[0])] * (-len(r.tiles) % 3)
    rows = [np.hstack(tiles[i : i + 3]) for i in range(0, len(tiles), 3)]
    cv2.imwrite(str(folder / f"{r.name}.png"), np.vstack(rows))


def clip_paths(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise SystemExit(f"no clips folder at {folder}: pass --clips DIR (a folder of .mp4 clips)")
    paths = sorted(folder.glob("*.mp4"))
    if not paths:
        raise SystemExit(f"{folder} holds no .mp4 clips: pass --clips DIR")
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=Path, default=None)
    parser.add_argument("--sheets", type=Path, default=None)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--presenter", help="a presenter slug or folder (default: the "
                        "default identity's avatar)")  # fmt: skip
    parser.add_argument(
        "--split",
        action="store_true",
        help="also read back the pose without expressions and the expressions without a turn",
    )
    args = parser.parse_args()
    if args.clips is None and not DEFAULT_CLIPS.is_dir():
        raise SystemExit("no clips given and ../shared/faces is absent: pass --clips DIR")
    cv2.setNumThreads(1)
    paths = clip_paths(args.clips or DEFAULT_CLIPS)
    if args.sheets:
        args.sheets.mkdir(parents=True, exist_ok=True)
    results, cut = {}, []
    for path in paths:
        clip = read_clip(path, args.frames)
        scale = face_scale(clip)
        plain = [place(f, scale) for f in clip]
        moved = [place(f, scale, *motion(i)) for i, f in enumerate(clip)]
        cut += plain[:CUT_EVERY]
        for name, frames in ((f"{path.stem}_plain", plain), (f"{path.stem}_moved", moved)):
            r = run(name, frames, max(1, len(frames) // SHEET_TILES), args.presenter, args.split)
            results[name] = summary(r)
            print(name, json.dumps(results[name]), flush=True)
            if args.sheets:
                write_sheet(r, args.sheets)
    r = run("cuts", cut, max(1, len(cut) // SHEET_TILES), args.presenter, args.split)
    results["cuts"] = summary(r)
    print("cuts", json.dumps(results["cuts"]), flush=True)
    if args.sheets:
        write_sheet(r, args.sheets)
    print(json.dumps(totals(results)))


def totals(results: dict) -> dict:
    values = list(results.values())
    blinking = [v["corr_eyes"] for v in values if v["blinks"]]
    return {
        "min_corr_yaw": min(v["corr_yaw"] for v in values),
        "min_corr_pitch": min(v["corr_pitch"] for v in values),
        "min_corr_roll": min(v["corr_roll"] for v in values),
        "min_corr_mouth": min(v["corr_mouth"] for v in values),
        "min_corr_eyes": min(blinking) if blinking else None,
        "foldovers": sum(v["foldovers"] for v in values),
        "head_in_frame_min": min(v["head_in_frame"] for v in values),
        "torso_intact_min": min(v["torso_intact"] for v in values),
        "frames_without_face": sum(v["frames_without_face"] for v in values),
        # Each run's correlations next to how far the input moved (a correlation over a span
        # near the read-back's own noise, e.g. a 4-degree yaw span, says little).
        "clips": {
            k: {m: v[m] for m in v if m.startswith("corr_") or m == "input_span"}
            for k, v in results.items()
        },
    }


if __name__ == "__main__":
    main()
