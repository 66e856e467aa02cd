"""The kiosk service: Django project package and the kiosk app.

The Celery app is imported here so that ``@shared_task`` binds to it in every process.
"""

from kiosk.celery import app as celery_app

__all__ = ["celery_app"]
