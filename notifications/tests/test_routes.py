"""Tests for the Celery routes (CELERY_TASK_ROUTES) and for the worker processes that consume each queue."""
import shlex
from pathlib import Path

import yaml
from django.conf import settings

from config.celery_app import app as celery_app

ALERT_TASKS = {
    "notifications.tasks.alert_deliver_task",
    "notifications.tasks.alert_outbox_sweep_task",
    "notifications.tasks.telegram_update_process_task",
    "notifications.tasks.telegram_updates_sweep_task",
}
ORDER_TASKS = {"orders.tasks.order_process_task", "orders.tasks.orders_requeue_stuck_task"}
PROJECTION_TASKS = {
    "projections.tasks.projection_recompute_task",
    "projections.tasks.projection_fallback_task",
    "projections.tasks.projection_rebuild_task",
    "projections.tasks.projection_transitions_task",
}


def _queue_of_every_task() -> dict[str, str]:
    celery_app.loader.import_default_modules()
    return {name: celery_app.amqp.router.route({}, name)["queue"].name
            for name in celery_app.tasks if not name.startswith("celery.")}


def _queues_of(argv: list[str]) -> set[str] | None:
    """The -Q queues of a `celery worker` command line; None for anything else (web, beat)."""
    if "worker" not in argv:
        return None
    return set(argv[argv.index("-Q") + 1].split(",")) if "-Q" in argv else {"<all>"}


def test_alert_delivery_its_sweep_and_bot_replies_go_to_the_alerts_queue_and_nothing_else_does():
    routed = _queue_of_every_task()

    assert {name for name, queue in routed.items() if queue == "alerts"} == ALERT_TASKS


def test_projection_tasks_go_to_the_projections_queue():
    routed = _queue_of_every_task()

    assert {name for name, queue in routed.items() if queue == "projections"} == PROJECTION_TASKS


def test_order_processing_and_its_sweep_go_to_the_orders_queue_and_nothing_else_does():
    routed = _queue_of_every_task()

    assert {name for name, queue in routed.items() if queue == "orders"} == ORDER_TASKS


def test_webhooks_reservation_expiry_and_housekeeping_go_to_the_default_queue():
    routed = _queue_of_every_task()
    rest = {name: queue for name, queue in routed.items() if name not in ALERT_TASKS | PROJECTION_TASKS | ORDER_TASKS}

    assert {"webhooks.tasks.webhook_delivery_send_task", "webhooks.tasks.webhook_deliveries_sweep_task",
            "reservations.tasks.reservations_expire_due_task",
            "notifications.tasks.telegram_updates_prune_task"} <= set(rest)
    assert set(rest.values()) == {settings.CELERY_TASK_DEFAULT_QUEUE}


def test_procfile_runs_a_worker_for_alerts_alone_one_for_orders_alone_and_one_for_the_rest():
    lines = (Path(settings.BASE_DIR) / "Procfile").read_text().splitlines()
    commands = dict(line.split(":", 1) for line in lines if line.strip())
    workers = {name: _queues_of(shlex.split(command)) for name, command in commands.items()}
    workers = {name: queues for name, queues in workers.items() if queues is not None}

    assert workers == {"alerts": {"alerts"}, "orders": {"orders"}, "worker": {"celery", "projections"}}
    assert set().union(*workers.values()) == {queue.name for queue in settings.CELERY_TASK_QUEUES}


def test_compose_runs_the_same_workers_as_the_procfile():
    compose = yaml.safe_load((Path(settings.BASE_DIR) / "docker-compose.yml").read_text())
    workers = {name: _queues_of(service["command"]) for name, service in compose["services"].items()
               if isinstance(service.get("command"), list)}
    workers = {name: queues for name, queues in workers.items() if queues is not None}

    assert workers == {"alerts": {"alerts"}, "orders": {"orders"}, "worker": {"celery", "projections"}}
