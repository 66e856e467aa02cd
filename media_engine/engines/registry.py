"""Which engine a session gets: engine name (from the kiosk's configuration) -> module.

Adding an engine is one new module under ``media_engine/engines/`` and one line here.
"""

from collections.abc import Callable

from media_engine.engines.base import FusionEngine, IdentityImage
from media_engine.engines.label_only import LabelOnlyEngine


class EngineUnavailable(RuntimeError):
    """The configured engine cannot run (unknown name, missing identity or model pack)."""


def _label(identity: IdentityImage | None) -> FusionEngine:
    return LabelOnlyEngine()


_FACTORIES: dict[str, Callable[[IdentityImage | None], FusionEngine]] = {
    "label": _label,
}


def engine_names() -> tuple[str, ...]:
    return tuple(_FACTORIES)


def create_engine(name: str, identity: IdentityImage | None = None) -> FusionEngine:
    """A new engine instance for one session (engines keep per-session state)."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise EngineUnavailable(f"unknown engine {name!r}; known: {', '.join(_FACTORIES)}")
    return factory(identity)
