"""OpenCV's thread pool in a media worker process (media_engine/threads.py)."""

import cv2
import pytest

from media_engine import threads


@pytest.fixture
def restore_opencv_threads():
    before = cv2.getNumThreads()
    yield
    cv2.setNumThreads(before)


def test_a_worker_runs_opencv_on_one_thread_by_default(monkeypatch, restore_opencv_threads):
    monkeypatch.delenv("MEDIA_ENGINE_CV_THREADS", raising=False)
    cv2.setNumThreads(2)
    assert threads.configure_opencv() == 1
    assert cv2.getNumThreads() == 1


def test_the_setting_gives_opencv_more_threads(monkeypatch, restore_opencv_threads):
    monkeypatch.setenv("MEDIA_ENGINE_CV_THREADS", "2")
    assert threads.configure_opencv() == 2
    assert cv2.getNumThreads() == 2


@pytest.mark.parametrize("bad", ["0", "-1", "two", ""])
def test_a_bad_setting_is_refused(monkeypatch, restore_opencv_threads, bad):
    monkeypatch.setenv("MEDIA_ENGINE_CV_THREADS", bad)
    with pytest.raises(threads.ThreadSettingError, match="MEDIA_ENGINE_CV_THREADS"):
        threads.configure_opencv()
