"""Celery tasks of webhooks: send one delivery, and the beat sweep that sends what is due."""
from celery import shared_task

from webhooks.services import webhook_deliveries_sweep, webhook_delivery_attempt


@shared_task(acks_late=True, ignore_result=True)
def webhook_delivery_send_task(delivery_id: int) -> None:
    # Retries are scheduled on the row (next_attempt_at) and picked up by the sweep, not by Celery ETAs,
    # which would outlive the Redis visibility timeout.
    webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(ignore_result=True)
def webhook_deliveries_sweep_task() -> None:
    webhook_deliveries_sweep()
