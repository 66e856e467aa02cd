from django.apps import AppConfig


class ProvenanceConfig(AppConfig):
    name = "kiosk.provenance"
    label = "provenance"
    verbose_name = "Provenance verification"
