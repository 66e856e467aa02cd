import numpy as np
import pytest

from media_engine.assets import AssetError, verified_path
from media_engine.label import apply_label, label_region


@pytest.mark.parametrize(
    "shape", [(480, 640), (720, 1280), (16, 16), (1, 1), (2160, 3840), (481, 641), (7, 3000)]
)
def test_label_lands_inside_any_frame(shape):
    frame = np.full((*shape, 3), 90, np.uint8)
    before = frame.copy()
    apply_label(frame)
    x, y, w, h = label_region(shape[1], shape[0])
    assert 0 <= x and 0 <= y and x + w <= shape[1] and y + h <= shape[0]
    changed = np.argwhere((frame != before).any(axis=2))
    assert len(changed) > 0
    assert changed[:, 0].min() >= y and changed[:, 0].max() < y + h
    assert changed[:, 1].min() >= x and changed[:, 1].max() < x + w


def test_label_is_readable_white_text_on_dark_box():
    frame = np.full((480, 640, 3), 128, np.uint8)
    apply_label(frame)
    x, y, w, h = label_region(640, 480)
    box = frame[y : y + h, x : x + w]
    assert box.max() > 230  # the white glyphs
    assert np.median(box) < 70  # the dark box behind them


def test_label_rejects_non_bgr_input():
    with pytest.raises(ValueError):
        apply_label(np.zeros((10, 10), np.uint8))


def test_altered_model_file_is_refused(tmp_path):
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "label.png").write_bytes(b"not the label")
    (tmp_path / "manifest.json").write_text(
        '{"files": [{"name": "label", "path": "assets/label.png", "sha256": "00", '
        '"source": "s", "version": "1", "licence": "l"}]}'
    )
    with pytest.raises(AssetError, match="altered"):
        verified_path("label", models_dir=tmp_path)
    (tmp_path / "assets" / "label.png").unlink()
    with pytest.raises(AssetError, match="missing"):
        verified_path("label", models_dir=tmp_path)
