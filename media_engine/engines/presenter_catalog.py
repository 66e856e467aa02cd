"""The shipped synthetic presenters: their slugs, their files, and a flat picture of each.

A shipped presenter is a layered rig in ``models/assets/presenters/<slug>/`` (the format is
in docs/presenters.md), each file in ``models/manifest.json`` as ``presenter_<slug>_<part>``
and checked against its sha256 before use. Its identity row names it by the asset
``presenter_<slug>``. ``flat_presenter`` composes the layers at rest into one BGR picture with
the head's landmarks, for engines that take a flat portrait.
"""

import functools
import json
from pathlib import Path

import cv2
import numpy as np

from media_engine.assets import AssetError, cached_verified_path, load_manifest

ASSET_PREFIX = "presenter_"
# The first is the default for new kiosks and the demo kiosk.
SHIPPED = ("mei", "daniel")
DEFAULT_PRESENTER = SHIPPED[0]
# Back to front; "mouth" is drawn by the rig only where the lips part.
LAYERS = ("background", "hair_back", "neck", "torso", "head", "hair_front")
PARTS = (*LAYERS, "mouth", "face", "rig")
CANVAS = (1280, 720)  # width, height


class PresenterError(AssetError):
    """Not a shipped presenter, or one of its files is missing or unreadable."""


def asset_name(slug: str) -> str:
    """The ``Identity.asset`` of a shipped presenter."""
    return ASSET_PREFIX + slug


def slug_of(asset: str) -> str | None:
    """The presenter slug an ``Identity.asset`` names, or None when it names something else."""
    if not asset.startswith(ASSET_PREFIX):
        return None
    slug = asset[len(ASSET_PREFIX) :]
    return slug if f"{ASSET_PREFIX}{slug}_head" in load_manifest() else None


def part_path(slug: str, part: str) -> Path:
    """The checked path of one file of a shipped presenter."""
    if part not in PARTS:
        raise PresenterError(f"{part!r} is not a presenter part (one of {', '.join(PARTS)})")
    if f"{ASSET_PREFIX}{slug}_head" not in load_manifest():
        raise PresenterError(f"{slug!r} is not a shipped presenter (see models/manifest.json)")
    return cached_verified_path(f"{ASSET_PREFIX}{slug}_{part}")


def read_layer(slug: str, part: str) -> np.ndarray:
    """A layer as stored: BGR for the background, BGRA for the others."""
    flags = cv2.IMREAD_COLOR if part == "background" else cv2.IMREAD_UNCHANGED
    image = cv2.imread(str(part_path(slug, part)), flags)
    if image is None:
        raise PresenterError(f"presenter {slug!r}: {part}.png is not a readable image")
    return image


def read_rig(slug: str) -> dict:
    return json.loads(part_path(slug, "rig").read_text(encoding="utf-8"))


def read_face(slug: str) -> np.ndarray:
    """The head's 468 landmarks (float32, canvas pixels)."""
    return np.load(part_path(slug, "face")).astype(np.float32)


def compose(layers: dict[str, np.ndarray]) -> np.ndarray:
    """The layers at rest, back to front, as one BGR picture."""
    out = layers["background"][..., :3].astype(np.float32)
    for name in LAYERS[1:]:
        layer = layers[name].astype(np.float32)
        alpha = layer[..., 3:] / 255.0
        out = out * (1 - alpha) + layer[..., :3] * alpha
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


@functools.cache
def flat_presenter(slug: str) -> tuple[np.ndarray, np.ndarray]:
    """(BGR picture at rest, its 468 landmarks) of a shipped presenter (read-only arrays)."""
    image = compose({name: read_layer(slug, name) for name in LAYERS})
    face = read_face(slug)
    image.flags.writeable = False
    face.flags.writeable = False
    return image, face
