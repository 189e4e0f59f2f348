"""Tests for demand estimates: censored stockout days, weekday profiles, category fallback, backtested error."""
from datetime import date, timedelta

import pytest

from inventory.tests.factories import ProductFactory
from projections import services
from projections.models import DemandBasis, DemandEstimate
from projections.tests.factories import sales_history

TODAY = date(2026, 3, 10)  # a Tuesday
DAYS = 84  # the 56-day window plus the 28 days held out for the error
SATURDAY, TUESDAY = 5, 1  # positions in weekday_factors (Monday first)


def weekly(spike: int, other: int) -> list[int]:
    """Demand per day for DAYS days ending yesterday: ``spike`` on Saturdays, ``other`` on the rest."""
    first = TODAY - timedelta(days=DAYS)
    return [spike if (first + timedelta(days=n)).weekday() == SATURDAY else other for n in range(DAYS)]


def estimate(product) -> DemandEstimate:
    services.demand_recompute(product_ids=[product.pk], today=TODAY)
    return DemandEstimate.objects.get(product=product)


@pytest.mark.django_db
def test_steady_sales_give_their_daily_rate_and_flat_weekdays():
    product = ProductFactory()
    sales_history(product, today=TODAY, demand=[10] * DAYS, opening=10_000)
    assert not DemandEstimate.objects.filter(product=product).exists()

    result = estimate(product)

    assert result.daily_rate == pytest.approx(10.0)
    assert result.weekday_factors == pytest.approx([1.0] * 7)
    assert (result.basis, result.history_days, result.censored_days) == (DemandBasis.OWN, 56, 0)
    assert result.mae == pytest.approx(0.0)
    assert result.as_of == TODAY


@pytest.mark.django_db
def test_censored_stockout_days_do_not_pull_the_rate_down():
    steady, sold_out = ProductFactory(), ProductFactory()
    sales_history(steady, today=TODAY, demand=[10] * DAYS, opening=10_000)
    # Enough stock for 60 days, then 14 days on an empty shelf, restocked 10 days ago.
    sales_history(sold_out, today=TODAY, demand=[10] * DAYS, opening=600, receipts={DAYS - 10: 1_000})

    result, reference = estimate(sold_out), estimate(steady)

    # Censored: the day it sold out (ended at 0), the 14 empty days, and the restock day (began at 0).
    assert result.censored_days == 16
    assert result.history_days == 56 - 16
    assert result.daily_rate == pytest.approx(reference.daily_rate)
    assert result.mae == pytest.approx(0.0)


@pytest.mark.django_db
def test_a_saturday_spike_is_learned_as_a_weekday_factor():
    product = ProductFactory()
    sales_history(product, today=TODAY, demand=weekly(spike=40, other=10), opening=100_000)

    result = estimate(product)

    saturday = result.daily_rate * result.weekday_factors[SATURDAY]
    tuesday = result.daily_rate * result.weekday_factors[TUESDAY]
    assert saturday > 3 * tuesday
    assert saturday == pytest.approx(40, rel=0.2)
    assert tuesday == pytest.approx(10, rel=0.2)
    assert sum(result.weekday_factors) == pytest.approx(7.0)


@pytest.mark.django_db
def test_a_new_product_takes_its_categorys_profile():
    peers = [ProductFactory(category="bebidas") for _ in range(2)]
    for peer, other in zip(peers, (10, 20)):
        sales_history(peer, today=TODAY, demand=weekly(spike=4 * other, other=other), opening=100_000)
    services.demand_recompute(product_ids=[p.pk for p in peers], today=TODAY)
    newcomer, alone = ProductFactory(category="bebidas"), ProductFactory(category="sem-pares")
    for product in (newcomer, alone):
        sales_history(product, today=TODAY, demand=[0, 0, 0], opening=50)  # three days on sale, nothing sold

    result, lonely = estimate(newcomer), estimate(alone)

    known = DemandEstimate.objects.filter(product__in=peers)
    category_rate = sum(e.daily_rate for e in known) / 2
    category_factors = [sum(column) / 2 for column in zip(*(e.weekday_factors for e in known))]
    assert result.basis == DemandBasis.CATEGORY
    assert result.history_days == 3
    assert result.weekday_factors == pytest.approx(category_factors)
    assert result.daily_rate == pytest.approx(category_rate * (14 - 3) / 14)
    assert (lonely.basis, lonely.daily_rate) == (DemandBasis.SHORT, 0.0)


@pytest.mark.django_db
def test_the_error_is_the_backtest_over_the_last_28_days():
    product = ProductFactory()
    sales_history(product, today=TODAY, demand=[8, 12] * (DAYS // 2), opening=100_000)

    result = estimate(product)

    assert result.daily_rate == pytest.approx(10.0, abs=0.5)
    assert result.mae == pytest.approx(2.0, abs=0.5)


@pytest.mark.django_db
def test_the_estimate_is_made_once_per_store_day_by_the_projection_recompute():
    product = ProductFactory()
    sales_history(product, today=TODAY, demand=[10] * DAYS, opening=10_000)

    services.projection_recompute(product_ids=[product.pk], today=TODAY)
    first = DemandEstimate.objects.get(product=product)
    services.projection_recompute(product_ids=[product.pk], today=TODAY)
    same_day = DemandEstimate.objects.get(product=product)
    services.projection_recompute(product_ids=[product.pk], today=TODAY + timedelta(days=1))
    next_day = DemandEstimate.objects.get(product=product)

    assert first.as_of == TODAY
    assert same_day.computed_at == first.computed_at
    assert next_day.as_of == TODAY + timedelta(days=1)
    assert next_day.computed_at > first.computed_at


@pytest.mark.django_db
def test_the_beat_fallback_estimates_the_products_it_takes():
    product = ProductFactory()
    sales_history(product, today=TODAY, demand=[5] * DAYS, opening=10_000)

    services.projection_fallback_run(batch=10, today=TODAY)

    assert DemandEstimate.objects.get(product=product).daily_rate == pytest.approx(5.0)
