"""Celery tasks of notifications: alert delivery per driver, the outbox sweep, bot update processing and its sweep."""
from celery import shared_task

from notifications import services
from notifications.bot import bot_update_handle


@shared_task(ignore_result=True)
def alert_deliver_task(driver_id: int) -> None:
    # Not acks_late: the outbox row is the durable state and the sweep re-queues what a dead worker dropped.
    services.alert_deliver(driver_id=driver_id)


@shared_task(ignore_result=True)
def alert_outbox_sweep_task() -> None:
    services.alert_outbox_sweep()


@shared_task(ignore_result=True)
def telegram_update_process_task(update_id: int) -> None:
    update = services.telegram_update_claim(update_id=update_id)
    if update is not None:
        bot_update_handle(update=update)


@shared_task(ignore_result=True)
def telegram_updates_sweep_task() -> None:
    services.telegram_updates_sweep()


@shared_task(ignore_result=True)
def telegram_updates_prune_task() -> None:
    services.telegram_updates_prune()
