"""Models and assets from ``models/``, checked against ``models/manifest.json``.

Every file the media engine loads is named in the manifest with its sha256. A file that is
missing, or whose bytes differ from the manifest, is refused with a message that says which
file and what to do; nothing is ever downloaded.
"""

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
MANIFEST_PATH = MODELS_DIR / "manifest.json"


class AssetError(RuntimeError):
    """A model or asset file is missing, altered or not in the manifest."""


@dataclass(frozen=True)
class ManifestEntry:
    name: str
    path: str
    sha256: str
    source: str
    version: str
    licence: str


def load_manifest(manifest_path: Path = MANIFEST_PATH) -> dict[str, ManifestEntry]:
    data = json.loads(manifest_path.read_text(encoding="utf-8"))
    entries = {}
    for item in data["files"]:
        entry = ManifestEntry(**{k: item[k] for k in ManifestEntry.__dataclass_fields__})
        entries[entry.name] = entry
    return entries


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verified_path(
    name: str, *, models_dir: Path = MODELS_DIR, manifest_path: Path | None = None
) -> Path:
    """The path of asset ``name`` after checking that its bytes match the manifest."""
    manifest = load_manifest(manifest_path or models_dir / "manifest.json")
    entry = manifest.get(name)
    if entry is None:
        raise AssetError(f"{name!r} is not in {models_dir / 'manifest.json'}")
    path = models_dir / entry.path
    if not path.is_file():
        raise AssetError(
            f"model file {path} ({name}) is missing; it ships with the project "
            f"(source: {entry.source}) - restore it from the repository"
        )
    actual = file_sha256(path)
    if actual != entry.sha256:
        raise AssetError(
            f"model file {path} ({name}) is altered: sha256 {actual} does not match the "
            f"manifest's {entry.sha256}; restore the shipped file"
        )
    return path


@functools.cache
def cached_verified_path(name: str) -> Path:
    """``verified_path`` for the shipped ``models/``, checked once per process."""
    return verified_path(name)
