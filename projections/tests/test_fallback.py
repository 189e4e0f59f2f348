"""Tests for the beat fallback: dirty and stale rows first, then the oldest; concurrent runs split the rows."""
import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from inventory.selectors import location_default_id
from inventory.services import stock_receive
from inventory.tests.factories import ProductFactory
from projections import services
from projections.locks import summaries_lock_due
from projections.models import ProjectionSummary
from projections.selectors import summaries, summary_is_stale


def computed_minutes_ago(product, minutes: int) -> None:
    ProjectionSummary.objects.filter(product=product).update(computed_at=timezone.now() - timedelta(minutes=minutes))


@pytest.mark.django_db
def test_fallback_creates_missing_rows_and_computes_them_first():
    fresh, never = ProductFactory(on_hand=3), ProductFactory(on_hand=4)
    services.projection_recompute(product_ids=[fresh.pk])
    assert not ProjectionSummary.objects.filter(product=never).exists()

    taken = services.projection_fallback_run(batch=1)

    assert taken == [(never.pk, location_default_id())]
    assert ProjectionSummary.objects.get(product=never).start_balance == 4


@pytest.mark.django_db
def test_fallback_takes_dirty_then_stale_day_then_oldest():
    old, older, dirty, yesterday = (ProductFactory(on_hand=1) for _ in range(4))
    services.projection_recompute(product_ids=[old.pk, older.pk, dirty.pk])
    services.projection_recompute(product_ids=[yesterday.pk], today=services.projection_today() - timedelta(days=1))
    computed_minutes_ago(old, 5)
    computed_minutes_ago(older, 10)
    computed_minutes_ago(yesterday, 1)
    stock_receive(code=dirty.code, quantity=2)

    first = services.projection_fallback_run(batch=2)
    second = services.projection_fallback_run(batch=1)

    assert first == [(pid, location_default_id()) for pid in sorted([dirty.pk, yesterday.pk])]
    assert second == [(older.pk, location_default_id())]
    assert ProjectionSummary.objects.get(product=dirty).start_balance == 3
    assert ProjectionSummary.objects.get(product=yesterday).as_of == services.projection_today()


@pytest.mark.django_db
def test_fallback_batch_is_capped_at_500(settings):
    settings.PROJECTION_FALLBACK_BATCH = 10_000
    ProductFactory.create_batch(3)

    assert len(services.projection_fallback_run()) == 3
    assert len(services.projection_fallback_run(batch=10_000)) == 3


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_fallback_runs_never_take_the_same_row():
    products = ProductFactory.create_batch(8, on_hand=2)
    services.projection_placeholders_create()
    held, release = threading.Event(), threading.Event()
    result: dict[str, list[tuple[int, int]]] = {}

    def first_run():
        try:
            with transaction.atomic():
                result["first"] = summaries_lock_due(limit=5, today=services.projection_today())
                held.set()
                release.wait(10)
                services.projection_recompute(product_ids=[pid for pid, _location in result["first"]])
        finally:
            connection.close()

    def second_run():
        try:
            result["second"] = services.projection_fallback_run(batch=5)
        finally:
            connection.close()

    a = threading.Thread(target=first_run)
    a.start()
    assert held.wait(10)
    b = threading.Thread(target=second_run)
    b.start()
    b.join(10)
    release.set()
    a.join(10)

    assert len(result["first"]) == 5 and len(result["second"]) == 3
    assert set(result["first"]).isdisjoint(result["second"])
    assert set(result["first"]) | set(result["second"]) == {(p.pk, location_default_id()) for p in products}
    assert ProjectionSummary.objects.filter(computed_at__isnull=True).count() == 0


@pytest.mark.django_db
def test_a_threshold_change_makes_the_row_stale_and_due_first():
    product, other = ProductFactory(on_hand=4, low_stock_threshold=2), ProductFactory(on_hand=4)
    services.projection_recompute(product_ids=[product.pk, other.pk])
    computed_minutes_ago(other, 30)
    product.low_stock_threshold = 10
    product.save()
    summary = summaries().get(product=product)
    assert summary_is_stale(summary)

    taken = services.projection_fallback_run(batch=1)

    summary = summaries().get(product=product)
    assert taken == [(product.pk, location_default_id())]
    assert (summary.threshold, summary.below_threshold_date, summary_is_stale(summary)) == (
        10, services.projection_today(), False)
