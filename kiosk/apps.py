from django.apps import AppConfig


class KioskConfig(AppConfig):
    name = "kiosk"
    verbose_name = "Kiosks"
    default_auto_field = "django.db.models.BigAutoField"
