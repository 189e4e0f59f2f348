"""Tests for inventory's ledger reads: the movements page, newest first over the monthly partitions and the
default one, and the plan that reads only the months the page needs."""
import re
from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection

from inventory import services
from inventory.models import MovementKind, StockMovement
from inventory.partitions import LEDGER_DEFAULT_PARTITION, LEDGER_TABLE, month_add, partition_month, partition_name
from inventory.selectors import (
    ledger_months_span,
    ledger_months_span_forget,
    location_default,
    movement_page,
    movement_page_sql,
)
from inventory.tests.factories import LocationFactory, ProductFactory

pytestmark = pytest.mark.django_db


def this_month():
    return datetime.now(timezone.utc).date().replace(day=1)


def months_back(count: int) -> None:
    """Partitions for this month and the ``count`` before it (the test database has this month and the
    coming ones); the span the page reads by is read again."""
    services.ledger_partitions_ensure(months_ahead=count, today=month_add(this_month(), -count))
    ledger_months_span_forget()


def row_at(product, location, when: datetime, quantity: int = 1) -> StockMovement:
    row = StockMovement.objects.create(product=product, location=location, kind=MovementKind.RECEIPT,
                                       quantity=quantity, on_hand_after=quantity, reason="test")
    StockMovement.objects.filter(pk=row.pk).update(created_at=when)
    row.refresh_from_db()
    return row


def month_middle(months_ago: int) -> datetime:
    month = month_add(this_month(), -months_ago)
    return datetime(month.year, month.month, 14, 12, tzinfo=timezone.utc)


def partition_of(row: StockMovement) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {LEDGER_TABLE} WHERE id = %s", [row.pk])
        return cursor.fetchone()[0]


def test_the_span_is_the_newest_unbroken_run_of_monthly_partitions():
    ledger_months_span_forget()
    first, end = ledger_months_span()
    assert first == datetime(this_month().year, this_month().month, 1, tzinfo=timezone.utc)
    assert end > first

    months_back(3)
    services.ledger_partitions_ensure(months_ahead=0, today=month_add(this_month(), -6))  # a gap before it
    ledger_months_span_forget()

    widened, same_end = ledger_months_span()
    three_back = month_add(this_month(), -3)
    assert widened == datetime(three_back.year, three_back.month, 1, tzinfo=timezone.utc)
    assert same_end == end


def test_the_page_is_newest_first_by_time_then_id_across_months_and_the_default_partition():
    months_back(4)
    product, other = ProductFactory(code="PAGE-T"), ProductFactory(code="PAGE-OTHER")
    here, there = location_default(), LocationFactory(code="PAGE-B")
    rows = [row_at(product, here, month_middle(months_ago)) for months_ago in (2, 0, 4, 1, 3)]
    tied = [row_at(product, here, month_middle(1)) for _ in range(2)]  # same time as rows[3]: by id
    far_past = row_at(product, here, datetime(2001, 5, 1, tzinfo=timezone.utc))
    far_future = row_at(product, here, datetime(2041, 2, 1, tzinfo=timezone.utc))
    at_b = row_at(product, there, month_middle(0) + timedelta(hours=1))
    row_at(other, here, month_middle(0))  # another product's row: never on this page
    assert {partition_of(far_past), partition_of(far_future)} == {LEDGER_DEFAULT_PARTITION}
    assert partition_of(rows[2]) == partition_name(month_add(this_month(), -4))

    mine = [*rows, *tied, far_past, far_future]
    expected = [r.pk for r in sorted(mine, key=lambda r: (r.created_at, r.pk), reverse=True)]
    whole = movement_page(product=product, locations=[here], start=0, stop=100)
    by_threes = [r.pk for start in range(0, 12, 3)
                 for r in movement_page(product=product, locations=[here], start=start, stop=start + 3)]
    both = movement_page(product=product, locations=[here, there], start=0, stop=100)

    assert [r.pk for r in whole] == expected
    assert expected[0] == far_future.pk and expected[-1] == far_past.pk
    assert expected.index(tied[1].pk) < expected.index(tied[0].pk) < expected.index(rows[3].pk)
    assert by_threes == expected
    assert [r.pk for r in both] == [far_future.pk, at_b.pk, *expected[1:]]
    assert movement_page(product=product, locations=[here], start=9, stop=9) == []


def test_a_page_carries_its_product_and_locations_and_costs_one_query(django_assert_num_queries):
    product = ProductFactory(code="PAGE-Q", on_hand=5)
    there = LocationFactory(code="PAGE-Q-B")
    row_at(product, there, month_middle(0))
    places = [location_default(), there]
    ledger_months_span()

    with django_assert_num_queries(1):
        page = movement_page(product=product, locations=places, start=0, stop=50)
        codes = {(row.product.code, row.location.code) for row in page}

    assert codes == {("PAGE-Q", places[0].code), ("PAGE-Q", "PAGE-Q-B")}


def _page_plan(product, place, *, generic: bool) -> list[str]:
    """The page statement's plan as it ran: planned for its values, or as the generic plan a prepared
    statement ends up with (no parameter known when planning)."""
    sql, params = movement_page_sql(product_id=product.pk, location_ids=[place.pk], start=0, stop=50)
    options = "ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF"
    with connection.cursor() as cursor:
        # A test's few rows are cheaper to read whole and sort than in index order; priced as on a big ledger.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        if not generic:
            cursor.execute(f"EXPLAIN ({options}) {sql}", params)
            return [line for (line,) in cursor.fetchall()]
        numbered = iter(range(1, len(params) + 1))
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute("PREPARE page_plan AS " + re.sub("%s", lambda _m: f"${next(numbered)}", sql))
        try:
            cursor.execute(f"EXPLAIN ({options}) EXECUTE page_plan({', '.join(['%s'] * len(params))})", params)
            return [line for (line,) in cursor.fetchall()]
        finally:
            cursor.execute("DEALLOCATE page_plan")


@pytest.mark.parametrize("generic", [False, True], ids=["planned-for-its-values", "prepared-generic-plan"])
def test_a_page_filled_by_this_month_never_reads_the_older_months(generic):
    months_back(5)
    product, place = ProductFactory(code="PAGE-PLAN"), location_default()
    for months_ago in range(1, 6):
        row_at(product, place, month_middle(months_ago))
    now = datetime.now(timezone.utc)
    for n in range(55):  # more than a page, all this month
        row_at(product, place, now - timedelta(seconds=n))

    plan = _page_plan(product, place, generic=generic)

    scans = {}
    for line in plan:
        found = re.search(rf"on ({LEDGER_TABLE}_\w+)", line)
        if found and partition_month(found[1]):
            scans[partition_month(found[1])] = "never executed" in line
    older = {month: never for month, never in scans.items() if month < this_month()}
    assert len(older) == 5, plan
    assert all(older.values()), "\n".join(plan)  # each older month's scan never started
    assert scans[this_month()] is False
    assert any(line.strip().startswith("->  Append") for line in plan), "\n".join(plan)
