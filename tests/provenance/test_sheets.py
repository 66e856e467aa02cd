"""The contact sheets of bench/provenance.py --sheets: what they show, and that frames are
never written into the repository."""

import numpy as np
import pytest

from bench.provenance_sheets import CROP_H, CROP_W, CROPS, DIFF_GAIN, ZOOM, sheets, write_sheets


def test_the_sheets_show_both_frames_the_crops_and_the_amplified_difference():
    rng = np.random.default_rng(3)
    clean = rng.integers(0, 200, (480, 640, 3), dtype=np.uint8)
    marked = clean.copy()
    marked[200:300, 300:400] += 1  # one level, amplified in the difference
    out = sheets(clean, marked)
    assert out["1x"].shape == (480, 2 * 640 + 8, 3)
    assert out["4x"].shape == (len(CROPS) * CROP_H * ZOOM, 2 * CROP_W * ZOOM + 8, 3)
    assert np.array_equal(out["1x"][100:, :640], clean[100:])  # 1:1, below the title
    assert np.array_equal(out["1x"][100:, 648:], marked[100:])
    diff = out["diff"]
    assert (diff[250, 350] == 128 + DIFF_GAIN).all() and (diff[400, 100] == 128).all()


def test_frames_never_go_into_the_repository(tmp_path):
    inside = tmp_path / "sheets"
    with pytest.raises(SystemExit, match="never go into the repository"):
        write_sheets(inside, [], root=tmp_path)
    assert not inside.exists()
