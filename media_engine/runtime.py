"""ONNX Runtime sessions: one per model per process, shared by every stream.

The CUDA execution provider comes first where this ONNX Runtime build has it (the
``onnxruntime-gpu`` package on a machine with CUDA), the CPU provider otherwise and as the
fallback. ``InferenceSession.run`` is thread-safe, so all sessions of a worker share one
session per model. Model files are loaded only through :func:`media_engine.assets.verified_path`
(sha256 against ``models/manifest.json``).

Settings, from the environment:

- ``MEDIA_ENGINE_ORT_THREADS``: intra-op threads of each session (default 1: the per-frame
  models are small, and several streams run side by side);
- ``MEDIA_ENGINE_ORT_PROVIDER``: ``cpu`` to force the CPU provider, ``auto`` (default) for
  CUDA first where it exists.
"""

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from media_engine.assets import MODELS_DIR, verified_path
from media_engine.threads import threads_from_env

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


class RuntimeSettingError(ValueError):
    """An ONNX Runtime setting from the environment is not valid."""


def intra_op_threads() -> int:
    return threads_from_env("MEDIA_ENGINE_ORT_THREADS", 1, RuntimeSettingError)


def provider_preference() -> str:
    value = os.environ.get("MEDIA_ENGINE_ORT_PROVIDER", "auto").strip().lower()
    if value not in ("auto", "cpu"):
        raise RuntimeSettingError(
            f"MEDIA_ENGINE_ORT_PROVIDER must be 'auto' or 'cpu', not {value!r}"
        )
    return value


def cuda_available() -> bool:
    """Whether this ONNX Runtime build can run models on CUDA (and the setting allows it)."""
    return CUDA in available_providers()


def available_providers() -> list[str]:
    """The providers to ask for, best first: CUDA where this build has it, then CPU."""
    providers = []
    if provider_preference() == "auto" and CUDA in ort.get_available_providers():
        providers.append(CUDA)
    providers.append(CPU)
    return providers


@dataclass(frozen=True)
class ModelSession:
    """A loaded model: its ONNX Runtime session and what it runs on."""

    name: str
    path: Path
    session: ort.InferenceSession
    input_name: str
    output_names: tuple[str, ...]
    provider: str  # the provider actually in use (the session's first)

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        """Run the model on one input tensor; thread-safe."""
        return self.session.run(self.output_names, {self.input_name: tensor})


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """The options every session of the media engine uses."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or intra_op_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return options


def create_session(
    model: str | Path | bytes, providers: list[str] | None = None, threads: int | None = None
) -> ort.InferenceSession:
    """A session for a model that is not one of the shipped files: a graph built in memory
    (bytes), or an operator-supplied model pack whose files the caller has checked. Shipped
    models go through :func:`open_session` / :func:`shared_session` instead."""
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(
        source, sess_options=session_options(threads), providers=providers or available_providers()
    )


def open_session(
    name: str, *, models_dir: Path = MODELS_DIR, threads: int | None = None
) -> ModelSession:
    """A new session for manifest entry ``name`` (its file checked by sha256 first)."""
    path = verified_path(name, models_dir=models_dir)
    session = create_session(path, threads=threads)
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise RuntimeError(f"model {name} has {len(inputs)} inputs; one was expected")
    return ModelSession(
        name=name,
        path=path,
        session=session,
        input_name=inputs[0].name,
        output_names=tuple(o.name for o in session.get_outputs()),
        provider=session.get_providers()[0],
    )


_sessions: dict[str, ModelSession] = {}
_lock = threading.Lock()


def shared_session(name: str) -> ModelSession:
    """The process-wide session for ``name``, opened on first use and shared afterwards."""
    session = _sessions.get(name)
    if session is not None:
        return session
    with _lock:
        session = _sessions.get(name)
        if session is None:
            session = open_session(name)
            _sessions[name] = session
    return session


def providers_in_use() -> dict[str, str]:
    """Which provider each loaded model runs on (for the session stats and the benchmarks)."""
    return {name: s.provider for name, s in sorted(_sessions.items())}


def provider_in_use() -> str:
    """One word for the stats: the provider of the loaded models ("CUDAExecutionProvider",
    "CPUExecutionProvider"), or what would be used when nothing is loaded yet."""
    used = set(providers_in_use().values())
    if len(used) == 1:
        return used.pop()
    if not used:
        return available_providers()[0]
    return ",".join(sorted(used))
