"""The dashboard keeps no data of its own: this model only carries its permissions."""

from django.db import models

from kiosk.dashboard.roles import DASHBOARD_PERMISSIONS


class Dashboard(models.Model):
    class Meta:
        managed = False
        default_permissions = ()
        permissions = list(DASHBOARD_PERMISSIONS.items())

    def __str__(self) -> str:
        return "dashboard"
