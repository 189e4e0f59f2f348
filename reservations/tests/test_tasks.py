"""Tests for the reservation beat job: it is scheduled under the task's real name and expires due reservations."""
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from inventory.models import Stock
from inventory.tests.factories import ProductFactory
from reservations.models import Reservation, ReservationStatus
from reservations.tasks import reservations_expire_due_task
from reservations.tests.factories import reservation_make

pytestmark = pytest.mark.django_db


def test_beat_schedule_names_the_sweep_task():
    entry = settings.CELERY_BEAT_SCHEDULE["reservations-expire-due"]
    assert entry["task"] == reservations_expire_due_task.name
    assert entry["schedule"] == settings.RESERVATION_SWEEP_SECONDS


def test_sweep_task_expires_due_reservations_and_returns_units():
    product = ProductFactory(on_hand=5)
    due = reservation_make(lines=[{"code": product.code, "quantity": 3}])
    Reservation.objects.filter(pk=due.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert Stock.objects.get(product=product).reserved == 3

    assert reservations_expire_due_task.apply(kwargs={"batch_size": 10}).get() == 1

    assert Reservation.objects.get(pk=due.pk).status == ReservationStatus.EXPIRED
    assert Stock.objects.get(product=product).reserved == 0
