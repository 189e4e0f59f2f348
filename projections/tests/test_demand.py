"""Tests for demand estimates: censored stockout days, weekday profiles, category fallback, backtested error."""
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

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


@dataclass
class Row:
    """One ledger row of a random history: ``offset`` days from TODAY, at ``hour`` store time."""

    offset: int
    hour: int
    kind: str
    quantity: int


def demand_reference(rows: list[tuple[date, str, int, int]], *, today: date) -> dict:
    """The documented estimate, the obvious way, from (store day, kind, quantity, on hand after) rows in
    ledger order: carry each day's closing quantity forward, observe a day only when it began and ended
    with stock, fit weekday factors and a smoothed level on the observed days, and backtest the same fit."""
    window, backtest = settings.DEMAND_WINDOW_DAYS, settings.DEMAND_BACKTEST_DAYS
    alpha, prior = settings.DEMAND_SMOOTHING, settings.DEMAND_WEEKDAY_PRIOR_DAYS
    first = today - timedelta(days=window + backtest)
    closing = next((after for day, _k, _q, after in reversed(rows) if day < first), 0)
    sold, observed = {}, {}
    for n in range((today - first).days):
        day = first + timedelta(days=n)
        began = closing
        closing = next((after for d, _k, _q, after in reversed(rows) if d == day), closing)
        sold[day] = sum(-q for d, k, q, _a in rows if d == day and k == "sale")
        observed[day] = began > 0 and closing > 0

    def fit(origin: date):
        days = [origin - timedelta(days=n) for n in range(1, window + 1) if observed[origin - timedelta(days=n)]]
        if not days:
            return None
        total, count = sum(sold[d] for d in days), len(days)
        mean = total / count
        raw = []
        for dow in range(7):
            mine = [sold[d] for d in days if d.weekday() == dow]
            raw.append((sum(mine) + prior * mean) / (len(mine) + prior) / mean if mean > 0 else 1.0)
        factors = [f * 7 / sum(raw) for f in raw]
        weight = {d: (1 - alpha) ** (origin - timedelta(days=1) - d).days for d in days}
        rate = sum(weight[d] * sold[d] for d in days) / sum(weight[d] * factors[d.weekday()] for d in days)
        return rate, factors, count

    now, before = fit(today), fit(today - timedelta(days=backtest))
    checked = [d for d in sold if d >= today - timedelta(days=backtest) and observed[d]]
    mae = (sum(abs(sold[d] - before[0] * before[1][d.weekday()]) for d in checked) / len(checked)
           if before and checked else None)
    history = now[2] if now else 0
    return {
        "daily_rate": now[0] if now else 0.0,
        "weekday_factors": now[1] if now else [1.0] * 7,
        "mae": mae,
        "history_days": history,
        "censored_days": sum(not observed[today - timedelta(days=n)] for n in range(1, window + 1)),
        "basis": DemandBasis.OWN if history >= settings.DEMAND_MIN_HISTORY_DAYS else DemandBasis.SHORT,
    }


rows_st = st.lists(
    st.builds(Row, offset=st.integers(-95, 0), hour=st.integers(0, 23),
              kind=st.sampled_from(["sale", "sale", "sale", "receipt", "adjustment"]), quantity=st.integers(0, 12)),
    max_size=70,
)


def location_default_id() -> int:
    from inventory.selectors import location_default_id as default_id

    return default_id()


def ledger_write(product, rows: list[Row]) -> list[tuple[date, str, int, int]]:
    """Write ``rows`` as ``product``'s ledger (sales never below 0, an adjustment sets a count) at their store
    times; return them as (store day, kind, signed quantity, on hand after) in ledger order."""
    tz = ZoneInfo(settings.TIME_ZONE)
    on_hand, written = 0, []
    for row in sorted(rows, key=lambda r: (r.offset, r.hour)):
        day = TODAY + timedelta(days=row.offset)
        change = {"sale": -min(row.quantity, on_hand), "receipt": row.quantity}.get(row.kind, row.quantity - on_hand)
        on_hand += change
        written.append((day, row.kind, change, on_hand, datetime.combine(day, time(row.hour, 30), tzinfo=tz)))
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO inventory_stockmovement (product_id, location_id, kind, quantity, on_hand_after, reason, "
            "reference, actor, created_at) VALUES (%s, %s, %s, %s, %s, 'history', '', '', %s)",
            [(product.pk, location_default_id(), kind, change, after, at) for _d, kind, change, after, at in written])
    return [(day, kind, change, after) for day, kind, change, after, _at in written]


@pytest.mark.django_db
@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(histories=st.lists(rows_st, min_size=1, max_size=4))
def test_demand_sql_equals_python_reference(histories):
    """Several rows a day, days without rows, sellouts, counts to 0, no row before the window, rows of today."""
    with transaction.atomic():
        made = []
        for index, rows in enumerate(histories):
            product = ProductFactory(category=f"alone-{index}")  # no peers: a short history stays short
            made.append((product, ledger_write(product, rows)))

        services.demand_recompute(product_ids=[p.pk for p, _rows in made], today=TODAY)

        for product, rows in made:
            expected = demand_reference(rows, today=TODAY)
            got = DemandEstimate.objects.get(product=product)
            assert (got.history_days, got.censored_days, got.basis) == (
                expected["history_days"], expected["censored_days"], expected["basis"])
            assert got.daily_rate == pytest.approx(expected["daily_rate"], abs=1e-9)
            assert got.weekday_factors == pytest.approx(expected["weekday_factors"], abs=1e-9)
            assert got.mae == (None if expected["mae"] is None else pytest.approx(expected["mae"], abs=1e-9))
        transaction.set_rollback(True)


@pytest.mark.django_db
def test_a_product_already_estimated_today_keeps_its_estimate_when_asked_again():
    """Two recomputes racing past the service's check: the second one's statement changes nothing."""
    from projections import sql

    product = ProductFactory()
    sales_history(product, today=TODAY, demand=[10] * DAYS, opening=10_000)
    first = estimate(product)
    sales_history(product, today=TODAY, demand=[30] * DAYS, opening=10_000)  # more sales appear

    with transaction.atomic(), connection.cursor() as cursor:
        params = services._demand_params([product.pk], location_id=location_default_id(), today=TODAY)
        cursor.execute(sql.DEMAND_UPSERT_SQL, params)
        cursor.fetchall()

    again = DemandEstimate.objects.get(product=product)
    assert (again.daily_rate, again.computed_at) == (first.daily_rate, first.computed_at)
    services.demand_recompute(product_ids=[product.pk], today=TODAY + timedelta(days=1))
    assert DemandEstimate.objects.get(product=product).daily_rate > first.daily_rate
