"""The Django project: settings, the Celery app, root URLs and health."""

from .celery import app as celery_app

__all__ = ["celery_app"]
