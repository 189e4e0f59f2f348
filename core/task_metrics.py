"""Celery signal handlers that count every task run and time it (core.metrics), in whichever worker runs it."""
import time

from celery.signals import task_postrun, task_prerun

from core.metrics import CELERY_TASK_SECONDS, CELERY_TASKS

# Start times by task id; a pool process runs one task at a time, so this stays small.
_started: dict[str, float] = {}


@task_prerun.connect
def task_started(task_id=None, **kwargs) -> None:
    _started[task_id] = time.perf_counter()


@task_postrun.connect
def task_finished(task_id=None, task=None, state=None, **kwargs) -> None:
    started = _started.pop(task_id, None)
    name = getattr(task, "name", None) or "unknown"
    CELERY_TASKS.labels(name, state or "UNKNOWN").inc()
    if started is not None:
        CELERY_TASK_SECONDS.labels(name).observe(time.perf_counter() - started)
