"""The Celery application: relays audit events into PostgreSQL and runs periodic jobs."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kiosk.settings")

app = Celery("kiosk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
