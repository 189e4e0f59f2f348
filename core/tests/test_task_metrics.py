"""Tests for the Celery task metrics: every run counted by task and final state and timed, summed on /metrics."""
import pytest
from celery import shared_task
from django.db import connection
from prometheus_client import REGISTRY

from config.celery_app import app
from core.tests.metrics import samples_in_text
from orders.tests.worker import Worker, wait_for
from reservations.tasks import reservations_expire_due_task

EXPIRE_TASK = "reservations.tasks.reservations_expire_due_task"


@shared_task(name="core.tests.test_task_metrics.task_that_fails")
def task_that_fails() -> None:
    raise ValueError("on purpose")


def _runs(task: str, state: str) -> float:
    return REGISTRY.get_sample_value("stockpulse_celery_tasks_total", {"task": task, "state": state}) or 0


def _timed(task: str) -> float:
    return REGISTRY.get_sample_value("stockpulse_celery_task_duration_seconds_count", {"task": task}) or 0


@pytest.mark.django_db
def test_a_task_run_is_counted_with_its_final_state_and_timed():
    failing = "core.tests.test_task_metrics.task_that_fails"
    before = (_runs(EXPIRE_TASK, "SUCCESS"), _runs(failing, "FAILURE"), _timed(EXPIRE_TASK), _timed(failing))

    reservations_expire_due_task.apply()
    task_that_fails.apply()

    after = (_runs(EXPIRE_TASK, "SUCCESS"), _runs(failing, "FAILURE"), _timed(EXPIRE_TASK), _timed(failing))
    assert after == tuple(value + 1 for value in before)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_runs_in_a_worker_process_show_on_the_metrics_of_the_web_process(client, settings, tmp_path):
    app.control.purge()  # tasks queued by earlier tests would be counted too
    settings.METRICS_DIR = str(tmp_path)
    worker_dir = tmp_path / "celery-default"  # as scripts/with_metrics_dir.sh makes it for the Procfile's worker
    worker_dir.mkdir()
    worker = Worker(env={"PROMETHEUS_MULTIPROC_DIR": str(worker_dir)}, concurrency=1)
    try:
        assert samples_in_text(client.get("/metrics").content.decode(), "stockpulse_celery_tasks_total") == {}
        for _ in range(2):
            reservations_expire_due_task.delay()

        # Both runs finished before the worker is stopped: a stop during the second would interrupt it,
        # and an interrupted run is counted with no final state.
        def both_counted():
            samples = samples_in_text(client.get("/metrics").content.decode(), "stockpulse_celery_tasks_total")
            return samples if sum(samples.values()) >= 2 else None

        counted = wait_for(both_counted, worker=worker)
    finally:
        worker.stop()
        connection.close()

    assert counted == {(("state", "SUCCESS"), ("task", EXPIRE_TASK)): 2}
    # Read again once the worker is gone: its counts stay on the web process's /metrics.
    assert samples_in_text(client.get("/metrics").content.decode(), "stockpulse_celery_tasks_total") == counted
