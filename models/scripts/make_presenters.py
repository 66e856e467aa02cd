"""Draw the shipped synthetic presenters: layered 2.5-D rigs (see docs/presenters.md).

Each presenter is built on the canonical face mesh, morphed (face width, jaw, eyes, lips,
nose), shaded per pixel from the mesh normals under one key light, with painted eyes,
brows, lips and mouth interior; hair, neck, business clothing and the studio backdrop are
height-field-shaded shapes placed from the face. No real person is behind any of them.

Writes ``models/assets/presenters/<slug>/`` (background, hair_back, torso, neck, head,
hair_front, mouth PNGs, face.npy, rig.json) and their entries in ``models/manifest.json``.
Deterministic; not run by CI:

    python models/scripts/make_presenters.py [--preview DIR]
"""

import argparse
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import presenter_body as pb
import presenter_paint as pp
from presenter_face import ROOT, Look, morph, paint_head, paint_mouth

OUT = ROOT / "models" / "assets" / "presenters"
LAYERS = ("background", "hair_back", "neck", "torso", "head", "hair_front")
LICENCE = "project's own; synthetic, no real person behind it"
SOURCE = "drawn by models/scripts/make_presenters.py (synthetic, no real person behind it)"


@dataclass(frozen=True)
class Presenter:
    slug: str
    names: dict
    description: str
    look: Look
    hair: str  # "bob" or "short"
    hair_colour: tuple
    jacket: tuple
    shirt: tuple
    tie: tuple | None
    backdrop: tuple
    neck_width: float
    shoulder_width: float


PRESENTERS = (
    Presenter(
        slug="mei",
        names={"en": "Mei", "zh-hans": "小美"},
        description="Synthetic presenter: a woman in a navy blazer and ivory blouse, "
        "chin-length dark hair, studio backdrop.",
        look=Look(
            skin=(150, 182, 226),
            lip=(92, 88, 160),
            iris=(52, 78, 110),
            brow=(34, 44, 62),
            eye_gain=1.3,
            jaw=0.88,
            cheek=0.95,
            lips_full=1.12,
            nose_w=0.9,
            mouth_w=0.8,
            brow_lift=1.0,
            blush=1.0,
        ),
        hair="bob",
        hair_colour=(34, 46, 68),
        jacket=(86, 50, 30),
        shirt=(218, 232, 240),
        tie=None,
        backdrop=(196, 176, 150),
        neck_width=0.46,
        shoulder_width=2.95,
    ),
    Presenter(
        slug="daniel",
        names={"en": "Daniel", "zh-hans": "丹尼尔"},
        description="Synthetic presenter: a man in a charcoal suit, white shirt and blue tie, "
        "short side-parted hair, studio backdrop.",
        look=Look(
            skin=(134, 162, 202),
            lip=(100, 110, 168),
            iris=(70, 88, 92),
            brow=(30, 36, 46),
            eye_gain=1.18,
            jaw=1.06,
            cheek=1.02,
            lips_full=1.0,
            nose_w=1.04,
            mouth_w=0.86,
            brow_lift=0.0,
            blush=0.6,
        ),
        hair="short",
        hair_colour=(30, 36, 46),
        jacket=(62, 56, 52),
        shirt=(236, 236, 238),
        tie=(120, 64, 34),
        backdrop=(190, 178, 160),
        neck_width=0.56,
        shoulder_width=3.15,
    ),
)


def hair_shapes(p: Presenter, f: pb.Frame) -> tuple[np.ndarray, np.ndarray, tuple]:
    """(back mask, front mask, parting point) of the presenter's hairstyle."""
    c, t, w = f.cx, f.top, f.half_w
    if p.hair == "bob":
        right = [
            (c + 0.62 * w, t - 0.62 * w),
            (c + 1.1 * w, t - 0.22 * w),
            (c + 1.34 * w, t + 0.5 * w),
            (c + 1.37 * w, t + 1.3 * w),
            (c + 1.3 * w, f.chin + 5),
            (c + 1.14 * w, f.chin + 40),
            (c + 0.86 * w, f.chin + 32),
            (c + 0.55 * w, f.chin - 10),
        ]
        back = [(c, t - 0.72 * w), *right, *[(2 * c - x, y) for x, y in right[::-1]]]
        front = [
            (c - 1.04 * w, f.jaw_y + 55),
            (c - 1.27 * w, t + 1.1 * w),
            (c - 1.28 * w, t + 0.45 * w),
            (c - 1.05 * w, t - 0.2 * w),
            (c - 0.6 * w, t - 0.6 * w),
            (c, t - 0.68 * w),
            (c + 0.6 * w, t - 0.6 * w),
            (c + 1.05 * w, t - 0.2 * w),
            (c + 1.28 * w, t + 0.45 * w),
            (c + 1.27 * w, t + 1.1 * w),
            (c + 1.04 * w, f.jaw_y + 55),
            (c + 0.96 * w, f.jaw_y - 10),
            (c + 0.92 * w, t + 0.7 * w),
            (c + 0.72 * w, t + 0.1 * w),
            (c + 0.35 * w, t - 0.12 * w),
            (c - 0.15 * w, t + 0.0 * w),
            (c - 0.6 * w, t + 0.3 * w),
            (c - 0.88 * w, t + 0.75 * w),
            (c - 0.96 * w, f.jaw_y - 10),
        ]
        part = (c + 0.3 * w, t - 1.2 * w)
    else:
        back = [
            (c, t - 0.98 * w),
            (c + 0.85 * w, t - 0.78 * w),
            (c + 1.08 * w, t - 0.1 * w),
            (c + 1.05 * w, t + 0.8 * w),
            (c - 1.05 * w, t + 0.8 * w),
            (c - 1.08 * w, t - 0.1 * w),
            (c - 0.85 * w, t - 0.78 * w),
        ]
        front = [
            (c - 0.97 * w, t + 0.95 * w),
            (c - 1.08 * w, t + 0.1 * w),
            (c - 0.95 * w, t - 0.65 * w),
            (c - 0.45 * w, t - 0.98 * w),
            (c + 0.3 * w, t - 1.04 * w),
            (c + 0.88 * w, t - 0.8 * w),
            (c + 1.08 * w, t + 0.1 * w),
            (c + 0.97 * w, t + 0.95 * w),
            (c + 0.9 * w, t + 0.4 * w),
            (c + 0.75 * w, t - 0.1 * w),
            (c + 0.5 * w, t - 0.26 * w),
            (c, t - 0.33 * w),
            (c - 0.5 * w, t - 0.3 * w),
            (c - 0.75 * w, t - 0.1 * w),
            (c - 0.9 * w, t + 0.4 * w),
        ]
        part = (c - 0.45 * w, t - 1.5 * w)
    back_m = pp.mask_poly([pp.smooth_curve(np.array(back), 16)])
    front_m = pp.mask_poly([pp.smooth_curve(np.array(front), 16)])
    return back_m, front_m, part


def paint_hair(
    mask: np.ndarray, p: Presenter, f: pb.Frame, part: tuple, seed: int, *, darker: float = 1.0
) -> np.ndarray:
    """Glossy strand-textured hair over ``mask`` (BGRA)."""
    yy, xx = np.mgrid[0 : pp.H, 0 : pp.W].astype(np.float32)
    angle = np.arctan2(yy - part[1], xx - part[0])
    strands = pp.directional_noise(seed, angle, length=61, scale=3.0)
    fine = cv2.GaussianBlur(
        pp.directional_noise(seed + 1, angle, length=31, scale=1.5), (0, 0), 0.6
    )
    normals = pp.dome_normals(mask, f.half_w * 0.55)
    albedo = np.asarray(p.hair_colour, np.float32) * darker
    albedo = albedo[None, None] * (1 + 0.16 * strands + 0.08 * fine)[..., None]
    colour = pp.shade(normals, albedo, spec=0.0, wrap=0.25, ambient=0.42, rim=0.35)
    # Anisotropic sheen: a band where the strands face the light half-way to the viewer.
    half = (pp.LIGHT + pp.VIEW) / np.linalg.norm(pp.LIGHT + pp.VIEW)
    band = np.clip(normals @ half, 0, 1) ** 6
    colour += (
        (band * (0.5 + 0.5 * np.clip(strands, -1, 1)))[..., None]
        * np.array([52, 56, 62], np.float32)
        * darker
    )
    inside = cv2.erode((mask > 0.5).astype(np.uint8), np.ones((5, 5), np.uint8))
    edge = 1 - cv2.GaussianBlur(inside.astype(np.float32), (0, 0), 3)
    alpha = cv2.GaussianBlur(mask, (0, 0), 0.9) * (1 - 0.35 * edge * np.clip(fine + 0.5, 0, 1))
    return pp.rgba(colour, alpha)


def paint_torso(p: Presenter, f: pb.Frame) -> np.ndarray:
    nw = f.half_w * p.neck_width
    body = pb.shoulders(f, p.shoulder_width)
    depth = 150 if p.tie is None else 190
    opening, lapel = pb.lapels(f, f.half_w * p.shoulder_width, depth)
    opening *= body
    lapel *= body
    wings, band = pb.shirt_collar(f, nw, 0.35 if p.tie is None else 0.2)
    colour = pb.fabric(body, p.jacket, f.half_w * 0.8, 31, weave=2.5)
    shirt = np.maximum(opening, band)
    pp.over(colour, pb.fabric(shirt, p.shirt, 40, 32, weave=1.5) * 0.9, shirt)
    if p.tie is not None:
        tie = _tie(f)
        pp.over(colour, pb.fabric(tie, p.tie, 18, 33, spec=0.12, weave=2), tie)
    colour *= (1 - pb.edge_shadow(lapel, (8, 6), 6, 0.45))[..., None]
    pp.over(colour, pb.fabric(lapel, np.asarray(p.jacket) * 1.08, 14, 34, spec=0.08), lapel)
    colour *= (1 - pb.edge_shadow(wings, (3, 7), 5, 0.4) * (1 - wings))[..., None]
    pp.over(colour, pb.fabric(wings, p.shirt, 10, 35, weave=1.2), wings)
    # Soft fall-off of the light towards the bottom of the frame.
    ramp = np.clip((np.arange(pp.H, dtype=np.float32) - f.collar) / (pp.H - f.collar), 0, 1)
    colour *= (1 - 0.25 * ramp)[:, None, None]
    alpha = np.maximum.reduce([body, shirt, wings]) * (1 - pb.neck_hole(f, nw))
    return pp.rgba(colour, alpha)


def _tie(f: pb.Frame) -> np.ndarray:
    c, y = f.cx, f.collar
    knot = [(c - 17, y - 8), (c + 17, y - 8), (c + 11, y + 26), (c - 11, y + 26)]
    blade = [(c - 11, y + 24), (c + 11, y + 24), (c + 30, pp.H + 10), (c - 30, pp.H + 10)]
    return np.maximum(pp.mask_poly([np.array(knot)]), pp.mask_poly([np.array(blade)]))


def draw(p: Presenter) -> dict[str, object]:
    lm = morph(p.look)
    f = pb.frame_of(lm)
    back_m, front_m, part = hair_shapes(p, f)
    hairline_shadow = cv2.GaussianBlur(np.roll(front_m, (7, 4), (0, 1)), (0, 0), 6) * (1 - front_m)
    layers = {
        "background": pb.paint_background(p.backdrop, 41),
        "hair_back": paint_hair(back_m, p, f, (f.cx, f.top - 1.2 * f.half_w), 51, darker=0.7),
        "neck": pb.paint_neck(lm, f, p.look.skin, p.neck_width),
        "torso": paint_torso(p, f),
        "head": paint_head(lm, p.look, hairline_shadow),
        "hair_front": paint_hair(front_m, p, f, part, 61),
        "mouth": paint_mouth(lm),
    }
    pivot = [round(f.cx, 1), round(f.jaw_y + 10, 1)]
    rig = {
        "slug": p.slug,
        "display_name": p.names,
        "version": "1",
        "synthetic": True,
        "neck_pivot": pivot,
        "description": p.description,
    }
    return {"layers": layers, "face": lm.astype(np.float32), "rig": rig}


def composite(layers: dict[str, np.ndarray]) -> np.ndarray:
    """The presenter as the rig shows it at rest (BGR)."""
    out = layers["background"].astype(np.float32)
    for name in LAYERS[1:]:
        layer = layers[name].astype(np.float32)
        a = layer[..., 3:] / 255
        out = out * (1 - a) + layer[..., :3] * a
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def write(p: Presenter, drawn: dict) -> list[dict]:
    folder = OUT / p.slug
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for name, img in drawn["layers"].items():
        path = folder / f"{name}.png"
        cv2.imwrite(str(path), img, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        files.append((name, path))
    np.save(folder / "face.npy", drawn["face"])
    files.append(("face", folder / "face.npy"))
    rig = json.dumps(drawn["rig"], indent=2, ensure_ascii=False) + "\n"
    (folder / "rig.json").write_text(rig, encoding="utf-8")
    files.append(("rig", folder / "rig.json"))
    return [
        {
            "name": f"presenter_{p.slug}_{name}",
            "path": str(path.relative_to(ROOT / "models")),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "source": SOURCE,
            "version": "1",
            "licence": LICENCE,
        }
        for name, path in files
    ]


def update_manifest(entries: list[dict]) -> None:
    manifest_path = ROOT / "models" / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    by_name = {item["name"]: item for item in manifest["files"]}
    by_name.update({e["name"]: e for e in entries})
    manifest["files"] = list(by_name.values())
    manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", "utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preview", type=Path, help="also write composited previews here")
    parser.add_argument("--only", help="draw only this slug (no manifest update)")
    args = parser.parse_args()
    entries = []
    for p in PRESENTERS:
        if args.only and p.slug != args.only:
            continue
        drawn = draw(p)
        if args.preview:
            args.preview.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(args.preview / f"{p.slug}.png"), composite(drawn["layers"]))
        if not args.only:
            entries += write(p, drawn)
    if entries:
        update_manifest(entries)
        for e in entries:
            print(e["name"], e["sha256"])


if __name__ == "__main__":
    main()
