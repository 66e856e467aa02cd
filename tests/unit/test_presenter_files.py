"""The shipped presenters' files: in the manifest, in the rig format (docs/presenters.md),
and layered so that the rig can move the head without gaps or doubled parts."""

import json

import cv2
import numpy as np
import pytest

from media_engine.assets import AssetError, file_sha256, load_manifest, verified_path
from media_engine.engines import presenter_catalog as pc

W, H = pc.CANVAS
# Alpha above this counts as "drawn" (antialiased edges are lower).
OPAQUE = 128


@pytest.fixture(scope="module", params=pc.SHIPPED)
def presenter(request):
    slug = request.param
    layers = {name: pc.read_layer(slug, name) for name in (*pc.LAYERS, "mouth")}
    return slug, layers, pc.read_face(slug), pc.read_rig(slug)


def alpha(layer: np.ndarray) -> np.ndarray:
    return layer[..., 3] >= OPAQUE


@pytest.mark.parametrize("slug", pc.SHIPPED)
def test_every_part_is_in_the_manifest_with_its_sha256(slug):
    manifest = load_manifest()
    for part in pc.PARTS:
        entry = manifest[f"presenter_{slug}_{part}"]
        assert entry.path.startswith(f"assets/presenters/{slug}/")
        assert "synthetic" in entry.licence and "make_presenters.py" in entry.source
        path = verified_path(entry.name)
        assert file_sha256(path) == entry.sha256


def test_the_layers_have_the_formats_sizes(presenter):
    _, layers, face, _ = presenter
    assert layers["background"].shape == (H, W, 3)
    for name in (*pc.LAYERS[1:], "mouth"):
        assert layers[name].shape == (H, W, 4), name
        assert alpha(layers[name]).any(), f"{name} is empty"
    assert face.shape == (468, 3) and face.dtype == np.float32 and np.isfinite(face).all()


def test_rig_json_has_the_contracts_fields(presenter):
    slug, layers, face, rig = presenter
    assert rig["slug"] == slug and rig["synthetic"] is True
    assert set(rig["display_name"]) == {"en", "zh-hans"} and all(rig["display_name"].values())
    assert rig["version"] and rig["description"]
    x, y = rig["neck_pivot"]
    # The pivot is at the top of the neck, behind the jaw: between the jaw angles, below the
    # eyes, above the chin, and on the neck layer.
    assert face[172, 0] < x < face[397, 0]
    assert face[33, 1] < y < face[152, 1]
    assert layers["neck"][round(y), round(x), 3] == 255


def test_the_torso_never_overlaps_the_head(presenter):
    _, layers, _, _ = presenter
    assert not (layers["torso"][..., 3] > 0)[layers["head"][..., 3] > 0].any()


def test_the_neck_reaches_under_the_jaw_and_under_the_collar(presenter):
    _, layers, face, _ = presenter
    neck, head, torso = alpha(layers["neck"]), alpha(layers["head"]), alpha(layers["torso"])
    centre = round(face[152, 0])
    column = np.nonzero(neck[:, centre])[0]
    chin = face[152, 1]
    # well under the jaw: the neck starts far above the chin, hidden by the head there
    assert column.min() < chin - 40 and head[column.min() : round(chin), centre].all()
    # well under the collar: the torso covers the neck's lower end along its whole width
    bottom = column.max()
    assert torso[bottom - 20 : bottom + 1, centre].all()
    covered = neck & torso
    assert covered.sum() > 0.15 * neck.sum()
    # no gap: every neck pixel that shows is joined to the head above and the torso below
    rows = np.nonzero((neck & ~head & ~torso)[:, centre])[0]
    assert rows.size and rows.min() > column.min() and rows.max() < bottom


def test_the_background_is_complete_and_holds_no_person(presenter):
    _, layers, face, _ = presenter
    background = layers["background"].astype(np.float32)
    # A backdrop: smooth everywhere (no edges of a face, hair or clothes in it).
    grad = np.abs(np.diff(background, axis=1)).max(axis=2)
    assert np.percentile(grad, 99.9) < 6
    # Not a copy of the person: the face region differs from the composite clearly.
    x0, y0 = face[:, :2].min(axis=0).astype(int)
    x1, y1 = face[:, :2].max(axis=0).astype(int)
    composite = pc.compose(layers).astype(np.float32)
    assert np.abs(composite[y0:y1, x0:x1] - background[y0:y1, x0:x1]).mean() > 30


def test_the_head_carries_the_face_and_no_hair_covers_the_eyes(presenter):
    _, layers, face, _ = presenter
    head, front = layers["head"], layers["hair_front"]
    xy = np.round(face[:, :2]).astype(int)
    on_head = head[xy[:, 1], xy[:, 0], 3]
    hull = cv2.convexHull(face[:, :2].astype(np.float32))
    depth = np.array(
        [cv2.pointPolygonTest(hull, (float(x), float(y)), True) for x, y in face[:, :2]]
    )
    inner = depth > 2  # all but the points on the face's outline
    assert (on_head > 0).all() and (on_head[inner] == 255).all()
    for eye in (33, 133, 159, 145, 263, 362, 386, 374, 1, 13, 14, 152):
        assert front[xy[eye, 1], xy[eye, 0], 3] == 0, eye
    # eyes open with catch-lights: near-white pixels inside each eye's contour
    for centre in (159, 386):  # upper lid midpoints
        x, y = xy[centre]
        patch = head[y - 2 : y + 25, x - 30 : x + 30, :3].astype(int)
        assert (patch.min(axis=2) > 235).any()


def test_the_mouth_interior_lies_behind_the_lips(presenter):
    _, layers, face, _ = presenter
    mouth = alpha(layers["mouth"])
    xy = np.round(face[:, :2]).astype(int)
    for point in (13, 14, 78, 308):  # inner lips: where they part, the interior shows
        assert mouth[xy[point, 1], xy[point, 0]], point
    ys, xs = np.nonzero(mouth)
    assert xs.min() > face[234, 0] and xs.max() < face[454, 0] and ys.min() > face[1, 1]
    # teeth (bright) and throat (dark) are both there
    rgb = layers["mouth"][..., :3][mouth].astype(int)
    assert (rgb.min(axis=1) > 180).sum() > 200 and (rgb.max(axis=1) < 60).sum() > 200


def test_rig_json_matches_the_stored_file(presenter):
    slug, _, _, rig = presenter
    stored = json.loads(pc.part_path(slug, "rig").read_text(encoding="utf-8"))
    assert stored == rig


def test_unknown_presenters_and_parts_are_refused_clearly():
    with pytest.raises(pc.PresenterError, match="not a shipped presenter"):
        pc.part_path("nobody", "head")
    with pytest.raises(pc.PresenterError, match="not a presenter part"):
        pc.part_path(pc.SHIPPED[0], "shoes")
    assert pc.slug_of("presenter_nobody") is None
    assert pc.slug_of("avatar_default") is None
    assert pc.slug_of(pc.asset_name(pc.SHIPPED[0])) == pc.SHIPPED[0]


def test_an_altered_presenter_file_is_refused(tmp_path):
    manifest = load_manifest()
    entry = manifest[f"presenter_{pc.SHIPPED[0]}_head"]
    models = tmp_path / "models"
    target = models / entry.path
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not the shipped head")
    (models / "manifest.json").write_text(json.dumps({"files": [entry.__dict__]}), encoding="utf-8")
    with pytest.raises(AssetError, match="altered"):
        verified_path(entry.name, models_dir=models)
