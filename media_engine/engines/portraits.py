"""A portrait with its landmarks: what the mesh engines (avatar, swap) warp.

The shipped default avatar and the shipped presenters come with their landmarks (drawn from
them); any other portrait's landmarks are found once, when the engine is built, with the same
perception the visitor's frames go through.
"""

import functools
import hashlib
from dataclasses import dataclass

import cv2
import numpy as np

from media_engine.assets import cached_verified_path
from media_engine.engines.base import IdentityImage
from media_engine.engines.errors import EngineSetupError
from media_engine.engines.presenter_catalog import SHIPPED, flat_presenter

DEFAULT_AVATAR = "avatar_default"
DEFAULT_AVATAR_LANDMARKS = "avatar_default_landmarks"
# Perception tracks: a still image converges in a few passes.
PASSES = 3
CACHE_SIZE = 32
_found: dict[str, np.ndarray] = {}


class PortraitError(EngineSetupError):
    """No usable face in the identity's portrait."""


@dataclass(frozen=True)
class Portrait:
    name: str
    image: np.ndarray  # BGR uint8
    landmarks: np.ndarray  # (468, 3) float32, pixels


@functools.cache
def _default_avatar() -> Portrait:
    image = cv2.imread(str(cached_verified_path(DEFAULT_AVATAR)), cv2.IMREAD_COLOR)
    if image is None:
        raise PortraitError("models/assets/avatar_default.png is not readable")
    landmarks = np.load(cached_verified_path(DEFAULT_AVATAR_LANDMARKS)).astype(np.float32)
    image.flags.writeable = False
    return Portrait("Default avatar", image, landmarks)


def default_avatar() -> Portrait:
    return _default_avatar()


def find_landmarks(image: np.ndarray) -> np.ndarray:
    """The 468 landmarks of the most prominent face in a still image (found once per
    distinct image in a worker: later sessions with the same identity reuse them)."""
    key = hashlib.sha256(image.tobytes()).hexdigest() + str(image.shape)
    cached = _found.get(key)
    if cached is None:
        cached = _find_landmarks(image)
        if len(_found) >= CACHE_SIZE:
            _found.pop(next(iter(_found)))
        _found[key] = cached
    return cached


def _find_landmarks(image: np.ndarray) -> np.ndarray:
    from media_engine.perception import Perceiver

    perceiver = Perceiver()
    face = None
    for _ in range(PASSES):
        face = perceiver.process(image) or face
    if face is None:
        raise PortraitError("no face found in the identity's portrait")
    landmarks = np.asarray(face.landmarks, np.float32)
    landmarks.flags.writeable = False
    return landmarks


def portrait_for(identity: IdentityImage | None) -> Portrait:
    """The identity's portrait and landmarks; the default avatar when there is none."""
    default = default_avatar()
    if identity is None:
        return default
    image = identity.image
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape == default.image.shape and np.array_equal(image, default.image):
        return Portrait(identity.name, default.image, default.landmarks)
    for slug in SHIPPED:
        flat, face = flat_presenter(slug)
        if image.shape == flat.shape and np.array_equal(image, flat):
            return Portrait(identity.name, flat, face)  # drawn from its landmarks
    return Portrait(identity.name, image, find_landmarks(image))
