"""The face mesh's structure: triangles, canonical 3D points and named groups of landmarks.

``TRIANGLES`` (852 x 3 int32) and ``CANONICAL_POINTS`` (468 x 3 float32) come from
``models/face_mesh_topology.npz`` (checked against the manifest on first use; see
``models/scripts/convert_mediapipe.py`` for how it is made). The canonical points are a
symmetric neutral face in a face frame: x towards the image's right (the visitor's left),
y down, z away from the camera, origin at the centroid, outer eye corners 9 units apart
(about centimetres). ``MIRROR`` maps each point to its left/right counterpart.

The index groups below are MediaPipe's (``mediapipe/python/solutions/face_mesh_connections.py``,
Apache-2.0, Copyright The MediaPipe Authors), written as ordered loops or lines. "Left" and
"right" are the visitor's: the left eye appears on the image's right.
"""

import functools

import numpy as np

from media_engine.assets import cached_verified_path

TOPOLOGY_ASSET = "face_mesh_topology"

# Eye contours, starting at the outer corner, along the upper lid to the inner corner, back
# along the lower lid.
RIGHT_EYE = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
LEFT_EYE = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)
RIGHT_EYE_CORNERS = (33, 133)  # outer, inner
LEFT_EYE_CORNERS = (263, 362)
# Upper/lower lid pairs across each eye (outer to inner).
RIGHT_EYE_LIDS = ((160, 144), (159, 145), (158, 153))
LEFT_EYE_LIDS = ((387, 373), (386, 374), (385, 380))

# Lips, from the visitor's right mouth corner along the upper lip and back along the lower.
LIPS_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291,
              375, 321, 405, 314, 17, 84, 181, 91, 146)  # fmt: skip
LIPS_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308,
              324, 318, 402, 317, 14, 87, 178, 88, 95)  # fmt: skip
MOUTH_CORNERS = (61, 291)  # right, left (outer lip line)
INNER_LIP_GAP = ((82, 87), (13, 14), (312, 317))  # upper/lower inner lip pairs

# Brows: upper edge then lower edge, from the outer end to the inner end.
RIGHT_BROW_UPPER = (70, 63, 105, 66, 107)
RIGHT_BROW_LOWER = (46, 53, 52, 65, 55)
LEFT_BROW_UPPER = (300, 293, 334, 296, 336)
LEFT_BROW_LOWER = (276, 283, 282, 295, 285)
RIGHT_BROW = RIGHT_BROW_UPPER + RIGHT_BROW_LOWER[::-1]
LEFT_BROW = LEFT_BROW_UPPER + LEFT_BROW_LOWER[::-1]

# Face outline, clockwise in the image from the top of the forehead.
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378,
             400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21,
             54, 103, 67, 109)  # fmt: skip

NOSE_TIP = 1
NOSE_BRIDGE = (168, 6, 197, 195, 5, 4)
FOREHEAD = 10
CHIN = 152
RIGHT_CHEEK, LEFT_CHEEK = 234, 454  # the face's widest points

# Points that move little with expressions: forehead, nose, eye corners, cheekbones.
RIGID = (10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 33, 133, 263, 362, 234, 454, 127, 356,
         93, 323, 98, 327, 109, 338, 67, 297, 103, 332)  # fmt: skip


@functools.cache
def _load() -> dict[str, np.ndarray]:
    with np.load(cached_verified_path(TOPOLOGY_ASSET)) as data:
        arrays = {name: data[name] for name in data.files}
    for array in arrays.values():
        array.setflags(write=False)
    return arrays


def triangles() -> np.ndarray:
    """The mesh triangles, (852, 3) int32 indices into the 468 landmarks."""
    return _load()["triangles"]


def canonical_points() -> np.ndarray:
    """The canonical neutral face, (468, 3) float32 (see the module docstring)."""
    return _load()["canonical_points"]


def mirror() -> np.ndarray:
    """For each landmark, the index of its left/right counterpart (468,) int32."""
    return _load()["mirror"]


def __getattr__(name: str) -> np.ndarray:
    # TRIANGLES, CANONICAL_POINTS and MIRROR load on first use, after the sha256 check.
    loaders = {"TRIANGLES": triangles, "CANONICAL_POINTS": canonical_points, "MIRROR": mirror}
    if name in loaders:
        return loaders[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
