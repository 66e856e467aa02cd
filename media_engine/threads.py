"""OpenCV's thread pool in a media worker process: one thread by default.

Each session runs its frames on its own thread, so the worker is already parallel across
sessions. OpenCV's own pool would split each call over the cores besides, and its threads
wait for work by spinning (``sched_yield``): profiled in a worker with four avatar sessions
on the 2-core CI kind, the pool's thread spent about 5 % of the worker's CPU in that wait;
two avatar pipelines on two threads took about 12 % less process CPU per frame with one
OpenCV thread than with two (BENCHMARKS.md, the load section).

``MEDIA_ENGINE_CV_THREADS`` sets it: a whole number ≥ 1 (0 is refused: OpenCV reads it as
"sequential" on some builds and as "all cores" on others).
"""

import os

import cv2


class ThreadSettingError(ValueError):
    """``MEDIA_ENGINE_CV_THREADS`` is not a whole number of threads."""


def threads_from_env(variable: str, default: int, error: type[ValueError]) -> int:
    """A number of threads from ``variable`` (``default`` when unset): a whole number ≥ 1,
    else ``error`` naming the variable."""
    raw = os.environ.get(variable, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise error(f"{variable} must be a whole number of threads, not {raw!r}") from None
    if value < 1:
        raise error(f"{variable} must be at least 1, not {value}")
    return value


def opencv_threads() -> int:
    return threads_from_env("MEDIA_ENGINE_CV_THREADS", 1, ThreadSettingError)


def configure_opencv() -> int:
    """Set OpenCV's threads for this process from the environment; returns the number."""
    threads = opencv_threads()
    cv2.setNumThreads(threads)
    return threads
