"""Tests for the projection tasks with a real Celery worker on the real Redis broker."""
import time

import pytest

from core.tests.celery_worker import queues_purge, running_worker
from inventory.services import stock_receive
from inventory.tests.factories import ProductFactory
from projections import services
from projections.models import ProjectionSummary
from projections.selectors import summaries, summary_is_stale


@pytest.fixture
def celery_worker(transactional_db):
    """A worker on the projections queue, where the recompute tasks are routed (as the Procfile `worker`)."""
    queues_purge()
    with running_worker("projections") as worker:
        yield worker
    queues_purge()


def wait_for(predicate, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.mark.slow
def test_stock_change_is_recomputed_by_the_worker_once_scheduled(celery_worker, settings):
    settings.PROJECTION_INLINE_MAX_PRODUCTS = 0
    product = ProductFactory(on_hand=10)
    services.projection_pending_release(product_ids=[product.pk])

    stock_receive(code=product.code, quantity=4)

    def fresh():
        summary = summaries().filter(product=product).first()
        return summary if summary and not summary_is_stale(summary) else None

    summary = wait_for(fresh)
    assert summary.start_balance == 14
    # The task released its dedupe mark, so the next change schedules again.
    assert services.projection_pending_claim(product_ids=[product.pk]) == [product.pk]
    services.projection_pending_release(product_ids=[product.pk])


@pytest.mark.django_db
def test_fallback_and_rebuild_tasks_compute_what_they_take():
    from projections.tasks import projection_fallback_task

    first, second = ProductFactory(on_hand=2), ProductFactory(on_hand=3)

    taken = projection_fallback_task.apply().get()
    summaries = {s.product_id: s.start_balance for s in ProjectionSummary.objects.all()}

    assert taken == 2
    assert summaries == {first.pk: 2, second.pk: 3}


@pytest.mark.django_db(transaction=True)
def test_nightly_rebuild_task_recomputes_every_product_from_worker_threads():
    from projections.tasks import projection_rebuild_task

    products = ProductFactory.create_batch(3, on_hand=4)
    assert ProjectionSummary.objects.count() == 0

    assert projection_rebuild_task.apply().get() == 3

    assert ProjectionSummary.objects.filter(computed_at__isnull=False, start_balance=4).count() == len(products)
