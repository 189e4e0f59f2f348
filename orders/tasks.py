"""Celery tasks of orders: process one order (late ack, retried with backoff) and the stuck-order sweep."""
from uuid import UUID

from celery import shared_task
from django.conf import settings

from orders.services import order_fail, order_process, orders_requeue_stuck


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             max_retries=settings.ORDER_MAX_RETRIES)
def order_process_task(self, order_id: str) -> None:
    try:
        order_process(order_id=UUID(order_id))
    except Exception as exc:
        if self.request.retries >= self.max_retries:
            order_fail(order_id=UUID(order_id), reason=f"{type(exc).__name__}: {exc}")
            return
        # Capped well below the broker's visibility timeout; the sweep covers anything longer.
        countdown = min(settings.ORDER_RETRY_BASE_SECONDS * 2 ** self.request.retries, 300)
        raise self.retry(exc=exc, countdown=countdown) from exc


@shared_task(ignore_result=True)
def orders_requeue_stuck_task() -> None:
    orders_requeue_stuck()
