"""Which pipeline a session gets: the kiosk's engine (and identity) behind the frame work.

Synchronous (it may read the identity's row and load models): the worker calls it from a
thread. Perception and adaptive resolution plug in here too, so that the session and the
worker never change when an engine arrives.
"""

from media_engine import runtime
from media_engine.adaptive import AdaptiveResolution
from media_engine.engines.base import IdentityImage
from media_engine.engines.registry import create_engine
from media_engine.pipeline import FramePipeline

# Engines that never look at the face: no perception (and no adaptive size) for them.
WITHOUT_PERCEPTION = frozenset({"label"})


def build_pipeline(
    engine_name: str, identity_id: int | None, session_id: str | None = None
) -> FramePipeline:
    """A new pipeline for one session; raises ``EngineUnavailable``/``IdentityUnavailable``."""
    identity: IdentityImage | None = None
    if identity_id is not None:
        from media_engine.identities import load_identity_image

        identity = load_identity_image(identity_id)
    engine = create_engine(engine_name, identity)
    if engine_name in WITHOUT_PERCEPTION:
        # Nothing to perceive and next to nothing to compute: the camera's own size.
        pipeline = FramePipeline(engine, session_id=session_id)
        pipeline.provider = "none"  # no model runs for this engine
        return pipeline
    from media_engine.perception import Perceiver

    adaptive = AdaptiveResolution()
    perceiver = Perceiver()  # loads the shared model sessions: the provider is known now
    pipeline = FramePipeline(
        engine,
        perceive=perceiver.process,
        adaptive=adaptive,
        processing_size=adaptive.size_limit(),
        session_id=session_id,
    )
    pipeline.provider = runtime.provider_in_use()
    return pipeline
