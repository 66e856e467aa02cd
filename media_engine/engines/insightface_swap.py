"""The ``insightface`` engine: face swap with an operator-supplied insightface model pack.

The models behind this engine (an inswapper-format swapper and an arcface-format recogniser)
are licensed by their authors for non-commercial use only, so the project never ships or
downloads them: an operator who has accepted their licence puts them under
``models/insightface/<pack>/`` with a ``pack.json`` that names the files and their licence
(see ``models/insightface/README.md``); the dashboard shows that licence
(``installed_packs()``). The insightface package itself is installed without its
dependencies (``make install``) so that it cannot bring a second ONNX Runtime or a GUI OpenCV.

The presenter's portrait is embedded once with the recogniser; every frame the swapper
replaces the visitor's face, aligned by five points taken from the 468 landmarks.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np

from media_engine.assets import MODELS_DIR, file_sha256
from media_engine.engines.base import IdentityImage
from media_engine.engines.errors import EngineSetupError
from media_engine.engines.face_regions import five_points
from media_engine.engines.frames import as_bgr
from media_engine.engines.portraits import portrait_for
from media_engine.perception.types import Face

PACKS_DIR = MODELS_DIR / "insightface"
PACK_FILE = "pack.json"
# Which installed pack to use when there are several (else the first by name).
PACK_ENV = "INSIGHTFACE_PACK"


class PackError(EngineSetupError):
    """No usable insightface model pack."""


@dataclass(frozen=True)
class Pack:
    name: str
    licence: str
    swapper: Path
    recogniser: Path

    @property
    def files(self) -> tuple[str, ...]:
        return (self.swapper.name, self.recogniser.name)


def read_pack(directory: Path) -> Pack:
    """The pack in ``directory``; its files must exist (and match a sha256 when given)."""
    try:
        spec = json.loads((directory / PACK_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PackError(f"{directory / PACK_FILE} is missing or not JSON: {exc}") from exc
    missing = [k for k in ("licence", "swapper", "recogniser") if not spec.get(k)]
    if missing:
        raise PackError(f"{directory / PACK_FILE} lacks {', '.join(missing)}")
    paths = {}
    for role in ("swapper", "recogniser"):
        path = directory / Path(spec[role]).name
        if not path.is_file():
            raise PackError(f"{role} model {path} named in {directory / PACK_FILE} is missing")
        expected = (spec.get("sha256") or {}).get(path.name)
        if expected and file_sha256(path) != expected:
            raise PackError(f"{path} does not match the sha256 in {directory / PACK_FILE}")
        paths[role] = path
    return Pack(
        name=spec.get("name") or directory.name,
        licence=str(spec["licence"]),
        swapper=paths["swapper"],
        recogniser=paths["recogniser"],
    )


def installed_packs(packs_dir: Path = PACKS_DIR) -> list[dict]:
    """Every installed pack as the dashboard lists it: name, licence, files (or the error)."""
    out = []
    if not packs_dir.is_dir():
        return out
    for directory in sorted(p for p in packs_dir.iterdir() if (p / PACK_FILE).is_file()):
        try:
            pack = read_pack(directory)
            out.append({"name": pack.name, "licence": pack.licence, "files": list(pack.files)})
        except PackError as exc:
            out.append({"name": directory.name, "licence": "", "files": [], "error": str(exc)})
    return out


def choose_pack(packs_dir: Path = PACKS_DIR) -> Pack:
    wanted = os.environ.get(PACK_ENV, "")
    dirs = sorted(p for p in packs_dir.glob("*") if (p / PACK_FILE).is_file())
    if wanted:
        dirs = [d for d in dirs if d.name == wanted]
    if not dirs:
        raise PackError(
            f"no insightface model pack installed under {packs_dir}"
            + (f" named {wanted!r}" if wanted else "")
            + " - the operator installs one (models/insightface/README.md); "
            "none is shipped or downloaded"
        )
    return read_pack(dirs[0])


def _insightface():
    try:
        from insightface.app.common import Face as InsightFace
        from insightface.model_zoo.arcface_onnx import ArcFaceONNX
        from insightface.model_zoo.inswapper import INSwapper
    except ImportError as exc:
        raise PackError(
            f"the insightface package is not installed ({exc}); `make install` installs it"
        ) from exc
    return InsightFace, ArcFaceONNX, INSwapper


class InsightfaceEngine:
    name: ClassVar[str] = "insightface"
    required_assets: ClassVar[tuple[str, ...]] = ()
    needs_identity: ClassVar[bool] = True

    def __init__(self, pack: Pack, source_bgr: np.ndarray, source_landmarks: np.ndarray) -> None:
        from media_engine.runtime import create_session

        insight_face, arcface, inswapper = _insightface()
        self.pack = pack
        self._face_type = insight_face
        self.recogniser = arcface(
            str(pack.recogniser), session=create_session(str(pack.recogniser))
        )
        self.swapper = inswapper(str(pack.swapper), session=create_session(str(pack.swapper)))
        source = insight_face(kps=five_points(source_landmarks))
        source.embedding = self.recogniser.get(source_bgr, source)
        self.source = source

    @classmethod
    def for_identity(
        cls, identity: IdentityImage | None, packs_dir: Path = PACKS_DIR
    ) -> "InsightfaceEngine":
        pack = choose_pack(packs_dir)
        portrait = portrait_for(identity)
        return cls(pack, portrait.image, portrait.landmarks)

    def render(self, frame: np.ndarray, face: Face | None) -> np.ndarray:
        frame = as_bgr(frame)
        if face is None or not np.isfinite(face.landmarks).all():
            return frame
        target = self._face_type(kps=five_points(face.landmarks))
        try:
            return self.swapper.get(frame, target, self.source, paste_back=True)
        except (ValueError, cv2.error):
            # insightface's paste-back fails when the aligned face lies wholly outside the
            # frame: there is no face to replace then.
            return frame
