"""The Celery application: configured from Django settings under the CELERY_ namespace."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

# Every task's sends fail fast while the broker is known down (core/enqueue.py).
app = Celery("stockpulse", task_cls="core.enqueue:FailFastTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Count and time every task run (stockpulse_celery_tasks_total on /metrics).
import core.task_metrics  # noqa: E402,F401
