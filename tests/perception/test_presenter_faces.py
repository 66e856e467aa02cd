"""Our own perception finds each shipped presenter's face where its face.npy says it is:
the landmarks the rig moves are the ones a viewer (and the fidelity bench) reads back."""

import numpy as np
import pytest

from media_engine.engines import presenter_catalog as pc
from media_engine.perception import Perceiver

# Mean landmark error allowed, as a share of the outer eye-corner distance (measured on the
# shipped presenters: about 0.02).
MEAN_ERROR = 0.04
FEATURES = {
    "eye corners": [33, 133, 362, 263],
    "nose tip": [1],
    "chin": [152],
    "mouth corners": [61, 291],
}


@pytest.mark.parametrize("slug", pc.SHIPPED)
def test_perception_finds_the_presenters_face_at_its_landmarks(slug):
    image, face = pc.flat_presenter(slug)
    perceiver = Perceiver(smoothing=False)
    found = None
    for _ in range(3):  # a still image: the tracker converges in a few passes
        found = perceiver.process(image) or found
    assert found is not None, f"no face found on presenter {slug!r}"
    got = np.asarray(found.landmarks, np.float32)[:, :2]
    eyes = float(np.linalg.norm(face[33, :2] - face[263, :2]))
    error = np.linalg.norm(got - face[:, :2], axis=1) / eyes
    assert error.mean() < MEAN_ERROR, f"{slug}: mean error {error.mean():.3f} of the eye distance"
    for name, points in FEATURES.items():
        assert error[points].max() < 2 * MEAN_ERROR, f"{slug}: {name} off by {error[points]}"


@pytest.mark.parametrize("slug", pc.SHIPPED)
def test_no_face_is_found_on_the_backdrop_alone(slug):
    background = pc.read_layer(slug, "background")
    perceiver = Perceiver(smoothing=False)
    assert all(perceiver.process(background) is None for _ in range(2))
