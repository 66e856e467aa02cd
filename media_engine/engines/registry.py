"""Which engine a session gets: engine name (from the kiosk's configuration) -> module.

Adding an engine is one new module under ``media_engine/engines/`` and one line here.
"""

import importlib
from collections.abc import Callable

from media_engine.assets import AssetError
from media_engine.engines.base import FusionEngine, IdentityImage
from media_engine.engines.errors import EngineSetupError
from media_engine.engines.label_only import LabelOnlyEngine


class EngineUnavailable(RuntimeError):
    """The configured engine cannot run (unknown name, missing identity or model pack)."""


def _label(identity: IdentityImage | None) -> FusionEngine:
    return LabelOnlyEngine()


def _engine(module: str, cls: str) -> Callable[[IdentityImage | None], FusionEngine]:
    """A factory that imports the engine's module when a session first needs it."""

    def factory(identity: IdentityImage | None) -> FusionEngine:
        engine_class = getattr(importlib.import_module(module), cls)
        try:
            return engine_class.for_identity(identity)
        except (EngineSetupError, AssetError) as exc:
            raise EngineUnavailable(f"{engine_class.name}: {exc}") from exc

    return factory


_FACTORIES: dict[str, Callable[[IdentityImage | None], FusionEngine]] = {
    "label": _label,
    "avatar": _engine("media_engine.engines.avatar", "AvatarEngine"),
    "swap": _engine("media_engine.engines.swap", "SwapEngine"),
    "insightface": _engine("media_engine.engines.insightface_swap", "InsightfaceEngine"),
    "blur": _engine("media_engine.engines.blur", "BlurEngine"),
}


def engine_names() -> tuple[str, ...]:
    return tuple(_FACTORIES)


def create_engine(name: str, identity: IdentityImage | None = None) -> FusionEngine:
    """A new engine instance for one session (engines keep per-session state)."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise EngineUnavailable(f"unknown engine {name!r}; known: {', '.join(_FACTORIES)}")
    return factory(identity)
