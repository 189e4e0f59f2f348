"""Tests for the SQL projection: equal to a plain day-by-day Python reference, and guarded by the source version."""
import threading
import time
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from inventory.models import Stock
from inventory.services import stock_receive
from inventory.tests.factories import ProductFactory, UnifiedCodeFactory
from projections import services
from projections.locks import summaries_lock_due
from projections.models import ProjectionSummary

TODAY = date(2026, 3, 10)
HORIZON = 28


@dataclass
class Mv:
    product: int
    offset: int
    direction: str
    quantity: int
    firm: bool
    status: str
    via_alias: bool


def reference(*, start: int, threshold: int, moves: list[Mv], include_tentative: bool = True) -> dict:
    """Day by day, the obvious way: late open movements land on today; balances are end of day."""
    inbound, outbound, late = [0] * HORIZON, [0] * HORIZON, 0
    for m in moves:
        if m.status != "open" or m.offset >= HORIZON or not (m.firm or include_tentative):
            continue
        day = max(m.offset, 0)
        late += m.offset < 0
        if m.direction == "in":
            inbound[day] += m.quantity
        else:
            outbound[day] += m.quantity
    balance, running = [], start
    for n in range(HORIZON):
        running += inbound[n] - outbound[n]
        balance.append(running)
    min7 = min(balance[:7])
    first = lambda cond: next((TODAY + timedelta(days=n) for n in range(HORIZON) if cond(balance[n])), None)  # noqa: E731
    stockout = TODAY if start < 0 else first(lambda b: b < 0)
    return {
        "start_balance": start,
        "daily_inbound": inbound,
        "daily_outbound": outbound,
        "daily_balance": balance,
        "min_balance_7d": min7,
        "min_balance_7d_date": TODAY + timedelta(days=balance.index(min7)),
        "stockout_date": stockout,
        "below_threshold_date": TODAY if start < threshold else first(lambda b: b < threshold),
        "days_of_cover": (stockout - TODAY).days if stockout else None,
        "late_movements": late,
    }


products_st = st.lists(
    st.tuples(st.integers(0, 60), st.integers(0, 70), st.integers(0, 12)), min_size=1, max_size=4
)
moves_st = st.lists(
    st.builds(
        Mv,
        product=st.integers(0, 3),
        offset=st.integers(-6, 34),
        direction=st.sampled_from(["in", "out"]),
        quantity=st.integers(1, 40),
        firm=st.booleans(),
        status=st.sampled_from(["open", "open", "open", "done", "cancelled"]),
        via_alias=st.booleans(),
    ),
    max_size=40,
)


@pytest.mark.django_db
@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(products=products_st, moves=moves_st)
def test_sql_projection_equals_python_reference(products, moves):
    with transaction.atomic():
        made = []
        for on_hand, reserved, threshold in products:
            product = ProductFactory(on_hand=on_hand, low_stock_threshold=threshold)
            # Reserved above on hand gives a negative available start.
            Stock.objects.filter(product=product).update(reserved=reserved)
            alias = UnifiedCodeFactory(product=product)
            made.append((product, alias, on_hand - reserved, threshold))
        moves = [m for m in moves if m.product < len(made)]
        items = [
            services.PlannedMovementInput(
                source_ref=f"r{n}", code=(made[m.product][1].code if m.via_alias else made[m.product][0].code),
                date=TODAY + timedelta(days=m.offset), direction=m.direction, quantity=m.quantity, kind="order",
                firmness="firm" if m.firm else "tentative", status=m.status,
            )
            for n, m in enumerate(moves)
        ]
        services.planned_movements_upsert(items=items)

        services.projection_recompute(product_ids=[p.pk for p, *_ in made], today=TODAY)

        for index, (product, _alias, start, threshold) in enumerate(made):
            summary = ProjectionSummary.objects.get(product=product)
            expected = reference(start=start, threshold=threshold, moves=[m for m in moves if m.product == index])
            got = {key: getattr(summary, key) for key in expected}
            assert got == expected
            assert (summary.as_of, summary.horizon_days) == (TODAY, HORIZON)
        transaction.set_rollback(True)


@pytest.mark.django_db
def test_tentative_movements_are_left_out_when_configured(settings):
    settings.PROJECTION_INCLUDE_TENTATIVE = False
    product = ProductFactory(on_hand=10)
    services.planned_movements_upsert(items=[
        services.PlannedMovementInput(source_ref="t1", code=product.code, date=TODAY, direction="out",
                                      quantity=8, kind="order", firmness="tentative"),
        services.PlannedMovementInput(source_ref="f1", code=product.code, date=TODAY, direction="out",
                                      quantity=3, kind="order"),
    ])

    services.projection_recompute(product_ids=[product.pk], today=TODAY)

    assert ProjectionSummary.objects.get(product=product).daily_balance[0] == 7


@pytest.mark.django_db
def test_summary_of_an_earlier_day_never_overwrites_a_later_one():
    product = ProductFactory(on_hand=5)
    services.projection_recompute(product_ids=[product.pk], today=TODAY)

    services.projection_recompute(product_ids=[product.pk], today=TODAY - timedelta(days=1))

    assert ProjectionSummary.objects.get(product=product).as_of == TODAY


def _wait_for_lock_waiter(timeout: float = 10.0) -> None:
    """Block until some backend of this test database waits on a row lock."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the recompute never waited on the summary row")


@pytest.mark.django_db(transaction=True)
def test_an_older_recompute_finishing_last_does_not_overwrite_a_newer_one():
    product = ProductFactory(on_hand=10)
    services.projection_recompute(product_ids=[product.pk], today=TODAY)
    locked, release, done = threading.Event(), threading.Event(), threading.Event()
    errors = []

    def holder():
        # Holds the summary row, then recomputes after the stock change and commits first.
        try:
            with transaction.atomic():
                summaries_lock_due(limit=10, today=TODAY + timedelta(days=1))
                locked.set()
                release.wait(10)
                services.projection_recompute(product_ids=[product.pk], today=TODAY)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    def older():
        # Its statement snapshot predates the stock change; it blocks on the row until holder commits.
        try:
            services.projection_recompute(product_ids=[product.pk], today=TODAY)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()
            connection.close()

    first = threading.Thread(target=holder)
    first.start()
    assert locked.wait(10)
    second = threading.Thread(target=older)
    second.start()
    _wait_for_lock_waiter()
    stock = stock_receive(code=product.code, quantity=5)
    release.set()
    first.join(10)
    second.join(10)

    assert errors == []
    summary = ProjectionSummary.objects.get(product=product)
    assert (summary.start_balance, summary.source_version) == (15, stock.version + summary.plan_version)
