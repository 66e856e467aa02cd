"""ONNX Runtime sessions: checked model files, one shared session per model, the provider
in use, settings from the environment."""

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from media_engine import runtime
from media_engine.assets import MODELS_DIR, AssetError
from media_engine.perception.detector import FaceDetector

MODELS = ("face_detection_short_range", "face_landmark", "face_mesh_topology")


@pytest.fixture
def models_copy(tmp_path: Path) -> Path:
    """A models directory of our own, with the shipped manifest and the face models."""
    manifest = json.loads((MODELS_DIR / "manifest.json").read_text())
    for entry in manifest["files"]:
        if entry["name"] in MODELS:
            shutil.copy(MODELS_DIR / entry["path"], tmp_path / entry["path"])
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


def test_manifest_names_the_face_models() -> None:
    manifest = {
        e["name"]: e for e in json.loads((MODELS_DIR / "manifest.json").read_text())["files"]
    }
    for name in MODELS:
        entry = manifest[name]
        assert entry["source"].startswith("PyPI mediapipe==0.10.14")
        assert entry["version"] == "0.10.14"
        assert entry["licence"].startswith("Apache-2.0")
        assert len(entry["sha256"]) == 64


def test_open_session_from_a_checked_copy(models_copy: Path) -> None:
    session = runtime.open_session("face_landmark", models_dir=models_copy)
    assert session.path == models_copy / "face_landmark.onnx"
    assert session.provider in ("CPUExecutionProvider", "CUDAExecutionProvider")
    outputs = session.run(np.zeros((1, 192, 192, 3), np.float32))
    assert sorted(o.size for o in outputs) == [1, 1404]


def test_missing_model_is_a_clear_error(models_copy: Path) -> None:
    (models_copy / "face_landmark.onnx").unlink()
    with pytest.raises(AssetError, match=r"face_landmark\.onnx.*is missing"):
        runtime.open_session("face_landmark", models_dir=models_copy)


def test_altered_model_is_a_clear_error(models_copy: Path) -> None:
    path = models_copy / "face_detection_short_range.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(AssetError, match=r"is altered: sha256 .* does not match"):
        runtime.open_session("face_detection_short_range", models_dir=models_copy)


def test_unknown_model_is_a_clear_error(models_copy: Path) -> None:
    with pytest.raises(AssetError, match="not in"):
        runtime.open_session("face_swapper", models_dir=models_copy)


def test_one_shared_session_per_model() -> None:
    first = runtime.shared_session("face_detection_short_range")
    assert runtime.shared_session("face_detection_short_range") is first
    assert FaceDetector().session is first
    in_use = runtime.providers_in_use()
    assert in_use["face_detection_short_range"] == first.provider
    assert runtime.provider_in_use() in ("CPUExecutionProvider", "CUDAExecutionProvider")


def test_shared_session_runs_from_many_threads(astronaut: np.ndarray) -> None:
    detector = FaceDetector()
    expected = detector.detect(astronaut)
    results: list = []
    errors: list = []

    def work() -> None:
        try:
            for _ in range(5):
                results.append(detector.detect(astronaut))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert len(results) == 20
    for found in results:
        assert len(found) == len(expected) == 1
        assert np.allclose(found[0].box, expected[0].box, atol=1e-3)


def test_provider_preference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIA_ENGINE_ORT_PROVIDER", "cpu")
    assert runtime.available_providers() == ["CPUExecutionProvider"]
    monkeypatch.setenv("MEDIA_ENGINE_ORT_PROVIDER", "auto")
    providers = runtime.available_providers()
    assert providers[-1] == "CPUExecutionProvider"
    assert ("CUDAExecutionProvider" in providers) == (
        "CUDAExecutionProvider" in runtime.ort.get_available_providers()
    )
    monkeypatch.setenv("MEDIA_ENGINE_ORT_PROVIDER", "tpu")
    with pytest.raises(runtime.RuntimeSettingError, match="MEDIA_ENGINE_ORT_PROVIDER"):
        runtime.available_providers()


def test_thread_setting(monkeypatch: pytest.MonkeyPatch, models_copy: Path) -> None:
    monkeypatch.delenv("MEDIA_ENGINE_ORT_THREADS", raising=False)
    assert runtime.intra_op_threads() == 1
    monkeypatch.setenv("MEDIA_ENGINE_ORT_THREADS", "2")
    assert runtime.intra_op_threads() == 2
    runtime.open_session("face_landmark", models_dir=models_copy)
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("MEDIA_ENGINE_ORT_THREADS", bad)
        with pytest.raises(runtime.RuntimeSettingError, match="MEDIA_ENGINE_ORT_THREADS"):
            runtime.open_session("face_landmark", models_dir=models_copy)


def test_create_session_for_a_graph_in_memory(models_copy: Path) -> None:
    data = (models_copy / "face_detection_short_range.onnx").read_bytes()
    session = runtime.create_session(data)
    assert session.get_providers()[0] == runtime.available_providers()[0]
    assert runtime.cuda_available() == ("CUDAExecutionProvider" in session.get_providers())


def test_perceiver_is_exported_lazily() -> None:
    import media_engine.perception as perception
    from media_engine.perception.perceiver import Perceiver

    assert perception.Perceiver is Perceiver
    with pytest.raises(AttributeError):
        _ = perception.Nothing
