"""Why an engine cannot be built for a session (the registry reports it as unavailable)."""


class EngineSetupError(RuntimeError):
    """An engine's assets, model pack or identity are missing or unusable."""
