from django.apps import AppConfig


class MediaEngineConfig(AppConfig):
    """The media engine: peer connections and the fusion pipeline (no models).

    Installed so that ``python manage.py media_engine`` exists and so that the embedded
    default can start the same worker inside daphne (``media_engine.embedded``).
    """

    name = "media_engine"
    verbose_name = "Media engine"
