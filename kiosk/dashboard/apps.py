from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "kiosk.dashboard"
    label = "dashboard"
    verbose_name = "Operator dashboard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from kiosk.dashboard.login_security import connect_signals

        connect_signals()
