"""Draw the default avatar: a stylised face with no real person behind it.

The face is the face mesh's canonical neutral face (perception's symmetric template,
``media_engine.perception.topology``), stylised (larger eyes, closed mouth) and seen from
the front: its triangles are shaded from their 3D normals, then eyes, brows, lips, nostrils,
hair, neck, clothes and background are painted on the projected landmarks. The projected
landmarks are the avatar's landmarks, so the engine warps exactly what was drawn.

Writes ``models/assets/avatar_default.png`` and ``models/assets/avatar_default_landmarks.npy``
(468×3 float32, pixels) and updates their entries in ``models/manifest.json``.
Deterministic; not run by CI:

    python models/scripts/make_default_avatar.py
"""

import hashlib
import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from media_engine.engines import face_regions as fr  # noqa: E402
from media_engine.perception import topology  # noqa: E402

TRIANGLES = topology.triangles()

SIZE = 640
SCALE = 18.5  # pixels per canonical unit (the face is about 330 px tall)
CENTRE = (SIZE / 2, 292.0)
SKIN = np.array([150, 178, 222], np.float32)  # BGR, warm light skin
LIP = (96, 92, 178)
HAIR = (38, 48, 70)
BROW = (40, 52, 78)
IRIS = (92, 112, 62)
SUIT = (86, 52, 34)
SHIRT = (236, 236, 240)


def project(points: np.ndarray) -> np.ndarray:
    """Canonical (x right-of-face-owner, y up, z forward) -> image pixels (468×3)."""
    out = np.empty((len(points), 3), np.float32)
    out[:, 0] = CENTRE[0] + points[:, 0] * SCALE
    out[:, 1] = CENTRE[1] - points[:, 1] * SCALE
    out[:, 2] = -points[:, 2] * SCALE
    return out


def open_eyes(lm: np.ndarray) -> None:
    """Stylise: eyes a little larger than the template's (easier to read too).

    A smooth radial stretch around each eye that fades to nothing at 1.2 eye widths, so
    that no landmark crosses another (the mesh stays unfolded).
    """
    for contour in (fr.RIGHT_EYE, fr.LEFT_EYE):
        centre = lm[contour, :2].mean(axis=0)
        radius = 1.2 * np.ptp(lm[contour, 0])
        offset = lm[:, :2] - centre
        dist = np.linalg.norm(offset, axis=1)
        gain = 1.0 + 0.32 * np.clip(1.0 - dist / radius, 0.0, 1.0)
        lm[:, :2] = centre + offset * gain[:, None]


def close_mouth(lm: np.ndarray) -> None:
    """A neutral avatar keeps its lips together: the inner lips meet at their midline and
    the lower lip follows, keeping its thickness."""
    inner = fr.LIPS_INNER
    half = len(inner) // 2
    upper = inner[: half + 1]
    lower = np.concatenate([inner[:1], inner[half:][::-1]])
    gap = lm[lower, :2] - lm[upper, :2]
    lm[upper, :2] += gap / 2
    lm[lower, :2] -= gap / 2
    # The outer lower lip and the chin below it rise by the gap at the same x.
    inner_x = lm[upper, 0]
    rise = np.interp(lm[:, 0], np.sort(inner_x), (gap[:, 1] / 2)[np.argsort(inner_x)])
    below = (lm[:, 1] > lm[lower, 1].min()) & ~np.isin(np.arange(len(lm)), inner)
    mouth_w = np.ptp(lm[inner, 0])
    near = np.abs(lm[:, 0] - lm[inner, 0].mean()) < mouth_w * 0.75
    fade = np.clip(1.0 - (lm[:, 1] - lm[lower, 1].max()) / (mouth_w * 0.9), 0.0, 1.0)
    sel = below & near
    lm[sel, 1] -= rise[sel] * fade[sel]


def vertex_normals(points: np.ndarray) -> np.ndarray:
    tri = points[TRIANGLES]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    # Orient every face normal towards the viewer (+z).
    n *= np.where(n[:, 2:3] < 0, -1.0, 1.0)
    normals = np.zeros_like(points)
    for k in range(3):
        np.add.at(normals, TRIANGLES[:, k], n)
    return normals / np.linalg.norm(normals, axis=1, keepdims=True).clip(1e-9)


def shade_mesh(canvas: np.ndarray, xy: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Gouraud-shade the mesh into ``canvas``; returns the mask of the pixels it covered."""
    light = np.array([-0.35, 0.45, 0.82])
    light /= np.linalg.norm(light)
    diffuse = np.clip(normals @ light, 0.0, 1.0)
    half = light + np.array([0.0, 0.0, 1.0])
    half /= np.linalg.norm(half)
    spec = np.clip(normals @ half, 0.0, 1.0) ** 24
    shade = 0.42 + 0.62 * diffuse
    ids = np.full(canvas.shape[:2], -1, np.int32)
    for k, t in enumerate(TRIANGLES):
        cv2.fillConvexPoly(ids, np.round(xy[t] * 16).astype(np.int32), k, cv2.LINE_8, 4)
    ys, xs = np.nonzero(ids >= 0)
    t = TRIANGLES[ids[ys, xs]]
    a, b, c = xy[t[:, 0]], xy[t[:, 1]], xy[t[:, 2]]
    v0, v1 = b - a, c - a
    v2 = np.stack([xs, ys], axis=1) - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    den = np.where(np.abs(den) < 1e-9, 1e-9, den)
    v = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
    w = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
    u = 1 - v - w
    s = u * shade[t[:, 0]] + v * shade[t[:, 1]] + w * shade[t[:, 2]]
    sp = u * spec[t[:, 0]] + v * spec[t[:, 1]] + w * spec[t[:, 2]]
    colour = SKIN[None] * s[:, None] + 60.0 * sp[:, None]
    canvas[ys, xs] = np.clip(colour, 0, 255)
    mask = np.zeros(canvas.shape[:2], np.uint8)
    mask[ys, xs] = 255
    return mask


def poly(xy: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return np.round(xy[idx] * 16).astype(np.int32)


def fill(img: np.ndarray, pts: np.ndarray, colour) -> None:
    cv2.fillPoly(img, [pts], colour, cv2.LINE_AA, 4)


def draw_background(img: np.ndarray) -> None:
    ramp = np.linspace(0.0, 1.0, SIZE, dtype=np.float32)[:, None, None]
    top = np.array([214, 200, 186], np.float32)
    bottom = np.array([168, 150, 132], np.float32)
    img[:] = top * (1 - ramp) + bottom * ramp


def draw_body(img: np.ndarray, xy: np.ndarray) -> None:
    chin = xy[152]
    jaw_l, jaw_r = xy[172], xy[397]
    neck_w = (jaw_r[0] - jaw_l[0]) * 0.42
    cx = chin[0]
    neck = np.array(
        [[cx - neck_w, chin[1] - 60], [cx + neck_w, chin[1] - 60],
         [cx + neck_w * 1.1, SIZE - 70], [cx - neck_w * 1.1, SIZE - 70]]
    )  # fmt: skip
    fill(img, np.round(neck * 16).astype(np.int32), tuple(int(v) for v in SKIN * 0.72))
    # Shoulders and jacket.
    cv2.ellipse(img, (int(cx), SIZE + 40), (300, 150), 0, 180, 360, SUIT, -1, cv2.LINE_AA)
    collar = np.array(
        [[cx - neck_w * 1.15, SIZE - 95], [cx + neck_w * 1.15, SIZE - 95], [cx, SIZE - 20]]
    )
    fill(img, np.round(collar * 16).astype(np.int32), SHIRT)
    # Shadow under the jaw.
    shadow = np.zeros(img.shape[:2], np.float32)
    cv2.ellipse(shadow, (int(cx), int(chin[1] - 8)), (int(neck_w * 1.3), 34), 0, 0, 180, 1.0, -1)
    shadow = cv2.GaussianBlur(shadow, (0, 0), 9)
    img[:] = (img * (1 - 0.35 * shadow[..., None])).astype(np.uint8)


def draw_hair_back(img: np.ndarray, xy: np.ndarray) -> None:
    oval = xy[fr.FACE_OVAL]
    cx = oval[:, 0].mean()
    top = oval[:, 1].min()
    half_w = (oval[:, 0].max() - oval[:, 0].min()) / 2
    cv2.ellipse(
        img, (int(cx), int(top + 95)), (int(half_w * 1.16), 150), 0, 180, 360, HAIR, -1,
        cv2.LINE_AA,
    )  # fmt: skip
    # Sides down to the jaw line.
    for sign in (-1, 1):
        x = cx + sign * half_w * 1.02
        side = np.array(
            [[x, top + 90], [x + sign * 0.16 * half_w, top + 95],
             [x + sign * 0.10 * half_w, top + 230], [x - sign * 0.05 * half_w, top + 215]]
        )  # fmt: skip
        fill(img, np.round(side * 16).astype(np.int32), HAIR)


def draw_fringe(img: np.ndarray, xy: np.ndarray) -> None:
    """Hair over the top of the forehead, following the mesh's upper contour."""
    upper = xy[[234, 127, 162, 21, 54, 103, 67, 109, 10, 338, 297, 332, 284, 251, 389, 356, 454]]
    lower = []
    for p in upper[::-1]:
        lower.append([p[0], p[1] + (14 if abs(p[0] - xy[10][0]) < 150 else 2)])
    line = np.array(lower)
    line[:, 1] += 12 * np.sin(np.linspace(0, 3 * np.pi, len(line)))
    top = upper.copy()
    top[:, 1] -= 30
    shape = np.vstack([top, line])
    fill(img, np.round(shape * 16).astype(np.int32), HAIR)
    # Sparse strands for texture.
    rng = np.random.default_rng(7)
    for _ in range(90):
        a = upper[rng.integers(0, len(upper))]
        x0 = a[0] + rng.normal(0, 20)
        y0 = a[1] - rng.uniform(8, 40)
        x1 = x0 + rng.normal(0, 12)
        y1 = y0 + rng.uniform(8, 26)
        shade = tuple(int(v) for v in np.array(HAIR) * rng.uniform(0.7, 1.4))
        cv2.line(img, (int(x0), int(y0)), (int(x1), int(y1)), shade, 1, cv2.LINE_AA)


def draw_eye(img: np.ndarray, xy: np.ndarray, contour: np.ndarray) -> None:
    pts = xy[contour]
    sclera = np.zeros(img.shape[:2], np.uint8)
    fill(sclera, np.round(pts * 16).astype(np.int32), 255)
    centre = pts.mean(axis=0)
    width = np.linalg.norm(pts[0] - pts[8])
    eye = img.copy()
    eye[sclera > 0] = (228, 232, 236)
    r = width * 0.24
    c = (round(float(centre[0]) * 16), round(float(centre[1] + 0.5) * 16))
    cv2.circle(eye, c, int(r * 16), IRIS, -1, cv2.LINE_AA, 4)
    cv2.circle(eye, c, int(r * 16 * 0.72), tuple(int(v * 0.7) for v in IRIS), 2, cv2.LINE_AA, 4)
    cv2.circle(eye, c, int(r * 16 * 0.42), (20, 20, 24), -1, cv2.LINE_AA, 4)
    hl = (c[0] - int(r * 5), c[1] - int(r * 6))
    cv2.circle(eye, hl, int(r * 16 * 0.18), (250, 250, 250), -1, cv2.LINE_AA, 4)
    img[sclera > 0] = eye[sclera > 0]
    # Lashes just inside the upper contour, a thin line inside the lower one: both lie on
    # the triangles that close the eye, so a blink folds them away with the eyeball and the
    # lid skin above meets the cheek below.
    upper, lower = pts[:9], np.vstack([pts[8:], pts[:1]])
    lines = img.copy()
    lash = np.round((upper + np.array([0.0, 1.2])) * 16).astype(np.int32)
    rim = np.round((lower - np.array([0.0, 0.6])) * 16).astype(np.int32)
    cv2.polylines(lines, [lash], False, (30, 34, 44), 3, cv2.LINE_AA, 4)
    cv2.polylines(lines, [rim], False, (90, 100, 130), 1, cv2.LINE_AA, 4)
    img[sclera > 0] = lines[sclera > 0]


def draw_brow(img: np.ndarray, xy: np.ndarray, idx: np.ndarray) -> None:
    pts = xy[idx].copy()
    # The brow landmarks lie in two rows; shift them up a little onto the brow ridge.
    pts[:, 1] -= 2
    fill(img, np.round(pts * 16).astype(np.int32), BROW)


def draw_mouth(img: np.ndarray, xy: np.ndarray) -> None:
    outer = xy[fr.LIPS_OUTER]
    inner = xy[fr.LIPS_INNER]
    lips = np.zeros(img.shape[:2], np.uint8)
    fill(lips, np.round(outer * 16).astype(np.int32), 255)
    lipcol = img.copy()
    lipcol[:] = LIP
    # Lower lip a little lighter (it catches the light).
    lower = np.zeros_like(lips)
    fill(lower, np.round(np.vstack([outer[10:], outer[:1], inner[10:][::-1]]) * 16)
         .astype(np.int32), 255)  # fmt: skip
    alpha = cv2.GaussianBlur(lips, (0, 0), 1.2).astype(np.float32)[..., None] / 255
    blended = img * (1 - 0.85 * alpha) + lipcol * 0.85 * alpha
    lighter = cv2.GaussianBlur(lower, (0, 0), 2).astype(np.float32)[..., None] / 255
    blended = blended + 22 * lighter * alpha
    img[:] = np.clip(blended, 0, 255).astype(np.uint8)
    seam = np.vstack([inner[:11], inner[10:][::-1][:1]])
    cv2.polylines(img, [np.round(seam * 16).astype(np.int32)], False, (50, 40, 90), 2,
                  cv2.LINE_AA, 4)  # fmt: skip


def draw_nose(img: np.ndarray, xy: np.ndarray) -> None:
    for a, b in ((98, 2), (327, 2)):
        p = xy[a] * 0.6 + xy[b] * 0.4 - [0, 3]
        cv2.ellipse(img, (int(p[0] * 16), int(p[1] * 16)), (5 * 16, 3 * 16), 0, 0, 360,
                    (70, 80, 120), -1, cv2.LINE_AA, 4)  # fmt: skip


def make() -> tuple[np.ndarray, np.ndarray]:
    # Perception's canonical face has y down and z away from the camera; here y is up and
    # z towards the viewer.
    points = topology.canonical_points().astype(np.float64) * [1.0, -1.0, -1.0]
    lm = project(points)
    open_eyes(lm)
    close_mouth(lm)
    xy = lm[:, :2].astype(np.float64)
    img = np.zeros((SIZE, SIZE, 3), np.uint8)
    draw_background(img)
    draw_hair_back(img, xy)
    draw_body(img, xy)
    face = np.zeros_like(img)
    mask = shade_mesh(face, xy, vertex_normals(points))
    soft = cv2.GaussianBlur(mask, (0, 0), 1.0).astype(np.float32)[..., None] / 255
    img[:] = (img * (1 - soft) + face * soft).astype(np.uint8)
    # Cheeks.
    blush = np.zeros(img.shape[:2], np.float32)
    for i in (205, 425):
        cv2.circle(blush, (int(xy[i][0]), int(xy[i][1])), 26, 1.0, -1)
    blush = cv2.GaussianBlur(blush, (0, 0), 12)[..., None]
    img[:] = np.clip(img - blush * np.array([14, 22, -6]), 0, 255).astype(np.uint8)
    draw_nose(img, xy)
    draw_eye(img, xy, fr.RIGHT_EYE)
    draw_eye(img, xy, fr.LEFT_EYE)
    draw_brow(img, xy, fr.RIGHT_BROW)
    draw_brow(img, xy, fr.LEFT_BROW)
    draw_mouth(img, xy)
    draw_fringe(img, xy)
    # A little grain so that it does not look flat.
    rng = np.random.default_rng(3)
    grain = rng.normal(0, 2.0, img.shape[:2]).astype(np.float32)[..., None]
    img[:] = np.clip(img + grain, 0, 255).astype(np.uint8)
    return img, lm


def main() -> None:
    out = ROOT / "models" / "assets"
    img, lm = make()
    png = out / "avatar_default.png"
    cv2.imwrite(str(png), img)
    npy = out / "avatar_default_landmarks.npy"
    np.save(npy, lm.astype(np.float32))
    manifest_path = ROOT / "models" / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    entries = {item["name"]: item for item in manifest["files"]}
    for name, path, what in (
        ("avatar_default", png, "the default avatar portrait"),
        ("avatar_default_landmarks", npy, "the default avatar's 468 landmarks (468x3 float32)"),
    ):
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        entries[name] = {
            "name": name,
            "path": str(path.relative_to(ROOT / "models")),
            "sha256": sha,
            "source": f"{what}, drawn by models/scripts/make_default_avatar.py on the canonical "
            "face mesh; synthetic, no real person behind it",
            "version": "1",
            "licence": "project's own",
        }
        print(name, sha)
    manifest["files"] = list(entries.values())
    manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", "utf-8")


if __name__ == "__main__":
    main()
