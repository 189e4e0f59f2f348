"""Celery tasks for reservations: the beat sweep that expires due reservations."""
from celery import shared_task

from reservations.services import reservation_expire_due


# Safe to run twice (or concurrently): the sweep skips rows another sweep holds.
@shared_task(acks_late=True, ignore_result=True)
def reservations_expire_due_task(batch_size: int = 500) -> int:
    return reservation_expire_due(batch_size=batch_size)
