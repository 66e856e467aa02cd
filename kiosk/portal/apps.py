from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "kiosk.portal"
    label = "portal"
    verbose_name = "Customer-service portal"
    default_auto_field = "django.db.models.BigAutoField"
