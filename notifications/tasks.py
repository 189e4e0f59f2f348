"""Celery tasks of notifications: alert delivery per driver, the outbox sweep, the buyers' daily reorder digest, bot
update processing and its sweep."""
from celery import shared_task

from notifications import services
from notifications.bot import bot_chat_serve


@shared_task(ignore_result=True)
def alert_deliver_task(driver_id: int) -> None:
    # Not acks_late: the outbox row is the durable state and the sweep re-queues what a dead worker dropped.
    services.alert_deliver(driver_id=driver_id)


@shared_task(ignore_result=True)
def alert_outbox_sweep_task() -> None:
    services.alert_outbox_sweep()


@shared_task(ignore_result=True)
def reorder_digest_task() -> None:
    # Beat runs it daily at REORDER_DIGEST_HOUR:REORDER_DIGEST_MINUTE (store time). Writing is idempotent per
    # buyer and day, so a duplicate run or a manual one the same day sends nothing twice.
    services.reorder_digest_write()


@shared_task(ignore_result=True)
def telegram_update_process_task(update_id: int) -> None:
    # Answers the update's chat in order: this update, and whatever of that chat is due before or after it.
    bot_chat_serve(update_id=update_id)


@shared_task(ignore_result=True)
def telegram_updates_sweep_task() -> None:
    services.telegram_updates_sweep()


@shared_task(ignore_result=True)
def telegram_updates_prune_task() -> None:
    services.telegram_updates_prune()
