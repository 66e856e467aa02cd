"""The avatar reuses its last drawn frame only while the rig's geometry stands still."""

import numpy as np

from media_engine.engines.avatar import AvatarEngine
from media_engine.engines.reuse import REUSE_PX, FrameReuse
from media_engine.perception.types import Face
from tests.engine_helpers import open_mouth, placed_landmarks, tracked
from tests.engine_helpers import turned_landmarks as turned

W, H = 640, 480
BLANK = np.zeros((H, W, 3), np.uint8)


def never_reusing() -> AvatarEngine:
    engine = AvatarEngine.for_identity(None)
    engine.reuse = FrameReuse(tolerance_px=-1.0)  # no distance is within: every frame drawn
    return engine


def run(engine: AvatarEngine, faces: list[Face | None]) -> list[np.ndarray]:
    return [engine.render(BLANK, face) for face in faces]


def assert_same_picture(a: np.ndarray, b: np.ndarray) -> None:
    """The same picture up to a shift of ``REUSE_PX``: at most that share of a full step at
    the sharpest edge, next to nothing on average."""
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.mean() < 0.1
    assert diff.max() <= 255 * REUSE_PX + 3


def still_then(lm: np.ndarray, then: list[Face | None]) -> list[Face | None]:
    return [tracked(lm)] * 30 + then


def test_a_still_visitor_gets_the_same_picture_without_it_being_drawn_again():
    lm = open_mouth(placed_landmarks(W, H, 160), 0.4)  # the painted mouth shows too
    faces = still_then(lm, [])
    cached, fresh = AvatarEngine.for_identity(None), never_reusing()
    ours, reference = run(cached, faces), run(fresh, faces)
    # The head settles (damped offset), then frames are reused.
    assert cached.reuse.hits >= 10
    assert fresh.reuse.hits == 0
    for a, b in zip(ours, reference, strict=True):
        assert_same_picture(a, b)


def test_a_turn_or_an_expression_is_drawn_not_reused():
    lm = placed_landmarks(W, H, 160)
    for change in (turned(lm, 12.0), open_mouth(lm, 0.5)):
        cached, fresh = AvatarEngine.for_identity(None), never_reusing()
        faces = still_then(lm, [tracked(change)] * 3)
        ours, reference = run(cached, faces), run(fresh, faces)
        hits = cached.reuse.hits
        assert hits >= 10
        # The picture changed, and the cached engine shows the change as it happens.
        assert np.abs(ours[-1].astype(int) - ours[29].astype(int)).mean() > 0.5
        for a, b in zip(ours[-3:], reference[-3:], strict=True):
            assert_same_picture(a, b)


def test_a_new_track_is_drawn_anew():
    lm = placed_landmarks(W, H, 160)
    engine = AvatarEngine.for_identity(None)
    run(engine, still_then(lm, []))
    assert engine.reuse.hits > 0
    misses = engine.reuse.misses
    engine.render(BLANK, tracked(lm, track=2))
    assert engine.reuse.misses == misses + 1


def test_the_presenter_at_rest_is_reused_and_a_frame_handed_out_is_a_copy():
    engine, fresh = AvatarEngine.for_identity(None), never_reusing()
    frames = run(engine, [None] * 40)  # nobody there: the presenter eases to rest
    assert engine.reuse.hits >= 20
    rest = frames[-1].copy()
    frames[-1][:] = 255  # the pipeline draws the label into the frame it gets
    again = engine.render(BLANK, None)
    np.testing.assert_array_equal(again, rest)
    assert_same_picture(again, run(fresh, [None] * 41)[-1])


def test_the_cache_compares_with_the_frame_drawn_not_the_last_one_reused():
    reuse = FrameReuse()
    points = np.zeros((4, 2))
    frame = np.zeros((2, 2, 3), np.uint8)
    assert reuse.lookup(("a",), points) is None
    reuse.store(("a",), points, frame, None)  # first frame: nothing to settle from, not kept
    assert reuse.lookup(("a",), points) is None
    reuse.store(("a",), points, frame, None)
    step = 0.6 * REUSE_PX
    assert reuse.lookup(("a",), points + step) is not None
    # Two small steps add up past the tolerance: drawn again.
    assert reuse.lookup(("a",), points + 2 * step) is None
    reuse.store(("a",), points + 2 * step, frame, None)
    assert reuse.lookup(("b",), points + 2 * step) is None  # another key
    # A moving head keeps no frame (no copy): the next still frame is drawn.
    reuse.store(("a",), points + 50, frame, None)
    assert reuse.lookup(("a",), points + 50) is None
