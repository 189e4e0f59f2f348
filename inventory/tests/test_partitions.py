"""Tests for the ledger partitioned by month: the migration of an existing ledger, where rows land, the upkeep
(service, command, beat task) that makes the coming months' partitions, and the rewrite of closed months in
product order."""
import threading
import time
from datetime import date, datetime, timezone

import psycopg
import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import connection, connections

from core.errors import Unavailable, ValidationFailed, caused_by
from core.tests.migrations import latest, migrate
from core.tests.polling import wait_for
from inventory import partitions as partitions_module
from inventory import services
from inventory.models import MovementKind, StockMovement
from inventory.partitions import (CLUSTERED_COMMENT, LEDGER_DEFAULT_PARTITION, LEDGER_TABLE, month_add, partition_add,
                                  partition_clustered, partition_month, partition_name, partitions_described,
                                  partitions_list)
from inventory.selectors import ledger_drift, location_default, location_default_id, movement_page
from inventory.tasks import ledger_partitions_ensure_task
from inventory.tests.factories import LocationFactory, ProductFactory, stock_at_location

# Inventory's migration just before the one that partitions the ledger (0007).
BEFORE_PARTITIONING = ("inventory", "0006_location_staff_users")


def partition_of(movement_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {LEDGER_TABLE} WHERE id = %s", [movement_id])
        return cursor.fetchone()[0]


def partitions() -> list[str]:
    with connection.cursor() as cursor:
        return partitions_list(cursor)


def movement_at(product, when: datetime, quantity: int = 1) -> StockMovement:
    """A ledger row dated ``when`` (with its stock row kept equal, so the ledger still sums to on_hand)."""
    from inventory.models import Stock

    row = StockMovement.objects.create(product=product, location_id=location_default_id(), kind=MovementKind.RECEIPT,
                                       quantity=quantity, on_hand_after=quantity, reason="test")
    StockMovement.objects.filter(pk=row.pk).update(created_at=when)
    Stock.objects.filter(product=product, location_id=location_default_id()).update(on_hand=quantity)
    return row


@pytest.mark.django_db
def test_the_ledger_table_is_range_partitioned_by_created_at_with_id_and_created_at_as_primary_key():
    with connection.cursor() as cursor:
        cursor.execute("SELECT p.partstrat, a.attname FROM pg_partitioned_table p JOIN pg_attribute a"
                       " ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]"
                       " WHERE p.partrelid = to_regclass(%s)", [LEDGER_TABLE])
        strategy_and_key = cursor.fetchone()
        cursor.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = to_regclass(%s)"
                       " AND contype = 'p'", [LEDGER_TABLE])
        primary_key = cursor.fetchone()[0]
    assert strategy_and_key == ("r", "created_at")
    assert primary_key == "PRIMARY KEY (id, created_at)"
    assert LEDGER_DEFAULT_PARTITION in partitions()


@pytest.mark.django_db
def test_a_movement_written_now_lands_in_this_months_partition_and_reads_back_by_id():
    product = ProductFactory(code="PART-1", on_hand=4)
    stock = services.stock_receive(code="PART-1", quantity=3)
    written = stock.written_movements[-1]
    this_month = written.created_at.astimezone(timezone.utc).date().replace(day=1)
    assert partition_of(written.pk) == partition_name(this_month)
    assert StockMovement.objects.get(pk=written.pk).quantity == 3
    assert StockMovement.objects.filter(product=product).count() == 2
    assert ledger_drift() == []


@pytest.mark.django_db
def test_a_movement_of_a_month_without_partition_lands_in_the_default_partition():
    product = ProductFactory(code="PART-FAR")
    row = movement_at(product, datetime(2041, 2, 10, 12, tzinfo=timezone.utc))
    assert partition_name(date(2041, 2, 1)) not in partitions()
    assert partition_of(row.pk) == LEDGER_DEFAULT_PARTITION
    assert StockMovement.objects.get(pk=row.pk).created_at.year == 2041


@pytest.mark.django_db
def test_ensure_creates_this_month_and_the_months_ahead_and_a_second_run_creates_nothing():
    before = partitions()
    created = services.ledger_partitions_ensure(months_ahead=2, today=date(2042, 11, 20))
    assert [p for p in before if p.startswith(f"{LEDGER_TABLE}_y2042") or p.startswith(f"{LEDGER_TABLE}_y2043")] == []
    assert created == [partition_name(date(2042, 11, 1)), partition_name(date(2042, 12, 1)),
                       partition_name(date(2043, 1, 1))]
    assert set(created) <= set(partitions())
    assert services.ledger_partitions_ensure(months_ahead=2, today=date(2042, 11, 20)) == []


@pytest.mark.django_db
def test_rows_the_default_partition_caught_move_into_their_months_new_partition_and_sums_hold():
    product = ProductFactory(code="PART-MOVE")
    inside = movement_at(product, datetime(2044, 3, 31, 23, 59, tzinfo=timezone.utc), quantity=7)
    outside = movement_at(product, datetime(2044, 4, 1, 0, 0, tzinfo=timezone.utc), quantity=2)
    assert {partition_of(inside.pk), partition_of(outside.pk)} == {LEDGER_DEFAULT_PARTITION}

    created = services.ledger_partitions_ensure(months_ahead=0, today=date(2044, 3, 2))

    assert created == [partition_name(date(2044, 3, 1))]
    assert partition_of(inside.pk) == partition_name(date(2044, 3, 1))
    assert partition_of(outside.pk) == LEDGER_DEFAULT_PARTITION  # April is not March: it stays
    assert sorted(StockMovement.objects.filter(product=product).values_list("quantity", flat=True)) == [2, 7]


@pytest.mark.django_db
def test_ensure_refuses_a_months_ahead_that_is_not_a_small_whole_number():
    for bad in (-1, 121, "3", True):
        with pytest.raises(ValidationFailed):
            services.ledger_partitions_ensure(months_ahead=bad)


@pytest.mark.django_db
def test_the_command_creates_the_coming_months_then_reports_none_left(capsys, settings):
    settings.LEDGER_PARTITION_MONTHS_AHEAD = 0
    call_command("ledger_partitions", "--months-ahead", "14")
    first = capsys.readouterr().out
    call_command("ledger_partitions", "--months-ahead", "14", "--list")
    second = capsys.readouterr().out
    assert "created " in first
    assert "Every month asked for already has its partition." in second
    assert f"{LEDGER_DEFAULT_PARTITION}: " in second


@pytest.mark.django_db
def test_the_command_lists_each_partition_with_the_planners_row_estimate_not_a_count(capsys):
    ProductFactory(code="PART-LIST", on_hand=4)
    services.stock_receive(code="PART-LIST", quantity=3)
    this_month = partition_name(datetime.now(timezone.utc).date().replace(day=1))
    with connection.cursor() as cursor:
        cursor.execute(f'ANALYZE "{this_month}"')  # counts this transaction's own rows as live
        cursor.execute(f'TRUNCATE "{LEDGER_DEFAULT_PARTITION}"')  # emptied: never analysed since
    call_command("ledger_partitions", "--months-ahead", "0", "--list")
    listed = capsys.readouterr().out.splitlines()
    assert f"{this_month}: about 2 row(s)" in listed
    assert f"{LEDGER_DEFAULT_PARTITION}: not analysed yet" in listed


@pytest.mark.django_db
def test_the_partitions_are_described_in_one_query_however_many_there_are(django_assert_num_queries):
    with connection.cursor() as cursor:
        partition_add(cursor, month=date(2030, 1, 1))
        partition_add(cursor, month=date(2030, 2, 1))
        cursor.execute(f'COMMENT ON TABLE "{partition_name(date(2030, 1, 1))}" IS %s', [CLUSTERED_COMMENT])
    with django_assert_num_queries(1), connection.cursor() as cursor:
        described = {partition.name: partition for partition in partitions_described(cursor)}

    assert len(described) >= 3
    assert list(described) == sorted(described)
    assert described[partition_name(date(2030, 1, 1))].clustered
    assert not described[partition_name(date(2030, 2, 1))].clustered
    assert not described[LEDGER_DEFAULT_PARTITION].clustered


@pytest.mark.django_db
def test_the_command_turns_a_bad_months_ahead_into_a_command_error():
    with pytest.raises(CommandError):
        call_command("ledger_partitions", "--months-ahead", "500")


@pytest.mark.django_db
def test_the_beat_task_makes_partitions_as_far_ahead_as_the_setting_says(settings):
    settings.LEDGER_PARTITION_MONTHS_AHEAD = 20
    settings.LEDGER_PARTITION_CLUSTER_PER_RUN = 0  # rewriting closed months vacuums: outside a test's transaction
    far = month_add(datetime.now(timezone.utc).date().replace(day=1), 20)
    assert partition_name(far) not in partitions()
    ledger_partitions_ensure_task()
    assert partition_name(far) in partitions()


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_create_each_partition_once_and_both_succeed():
    barrier, results, errors = threading.Barrier(2), [], []

    def run():
        try:
            barrier.wait(timeout=10)
            results.append(services.ledger_partitions_ensure(months_ahead=2, today=date(2046, 1, 1)))
        except Exception as exc:  # noqa: BLE001 - the assertion below names it
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        assert sorted(len(r) for r in results) == [0, 3]
        assert {partition_name(date(2046, m, 1)) for m in (1, 2, 3)} <= set(partitions())
    finally:
        with connection.cursor() as cursor:
            for month in (1, 2, 3):
                cursor.execute(f'DROP TABLE IF EXISTS "{partition_name(date(2046, month, 1))}"')


def _test_database_url() -> str:
    db = django_settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def _waiting_on_a_lock(sql_start: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                       " AND wait_event_type = 'Lock' AND query LIKE %s", [sql_start + "%"])
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
def test_an_insert_of_the_month_during_the_upkeep_waits_and_lands_in_the_new_partition():
    # The upkeep moves the month's rows out of the default partition, then attaches the new partition,
    # which PostgreSQL refuses while the default partition holds a row of that month. A session holding
    # the caught row's lock stops the upkeep at the move, after it took the ledger's lock, while an insert
    # of that month comes in (the row lock alone would not stop an insert).
    month = date(2048, 6, 1)
    product = ProductFactory(code="PART-RACE")
    caught = movement_at(product, datetime(2048, 6, 3, tzinfo=timezone.utc), quantity=4)
    assert partition_of(caught.pk) == LEDGER_DEFAULT_PARTITION
    upkeep_errors, insert_outcome, inserted = [], [], threading.Event()

    def upkeep():
        try:
            services.ledger_partitions_ensure(months_ahead=0, today=month)
        except Exception as exc:  # noqa: BLE001 - the assertion below names it
            upkeep_errors.append(exc)
        finally:
            connections.close_all()

    def insert():
        try:
            with psycopg.connect(_test_database_url(), autocommit=True) as conn:
                conn.execute(
                    f"INSERT INTO {LEDGER_TABLE} (product_id, location_id, kind, quantity, on_hand_after, reason,"
                    " reference, actor, created_at) VALUES (%s, %s, 'receipt', 1, 1, '', '', '', %s)",
                    [product.pk, location_default_id(), datetime(2048, 6, 20, tzinfo=timezone.utc)])
            insert_outcome.append("stored")
        except psycopg.errors.CheckViolation:
            insert_outcome.append("refused")
        finally:
            inserted.set()

    threads = [threading.Thread(target=upkeep), threading.Thread(target=insert)]
    try:
        with psycopg.connect(_test_database_url()) as holder:
            holder.execute(f'SELECT 1 FROM "{LEDGER_DEFAULT_PARTITION}" WHERE id = %s FOR UPDATE', [caught.pk])
            threads[0].start()
            wait_for(lambda: _waiting_on_a_lock("WITH moved"), "the upkeep never reached its move")
            threads[1].start()
            wait_for(lambda: inserted.is_set() or _waiting_on_a_lock("INSERT"), "the insert neither ran nor waited")
            assert not inserted.is_set()  # held by the upkeep's lock, not slipped in before the move
            holder.rollback()
        for thread in threads:
            thread.join(timeout=60)

        assert upkeep_errors == []
        assert partition_name(month) in partitions()
        assert partition_of(caught.pk) == partition_name(month)
        assert insert_outcome == ["stored"]
        with connection.cursor() as cursor:
            cursor.execute(f'SELECT count(*) FROM "{partition_name(month)}" WHERE product_id = %s', [product.pk])
            assert cursor.fetchone()[0] == 2  # the row caught before, and the one that waited
            cursor.execute(f'SELECT count(*) FROM "{LEDGER_DEFAULT_PARTITION}" WHERE created_at >= %s',
                           [datetime(2048, 6, 1, tzinfo=timezone.utc)])
            assert cursor.fetchone()[0] == 0
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP TABLE IF EXISTS "{partition_name(month)}"')


@pytest.mark.django_db(transaction=True)
def test_an_existing_ledger_moves_into_monthly_partitions_with_every_row_and_sum_and_its_numbering():
    old = migrate([BEFORE_PARTITIONING])
    try:
        Product, Stock = old.get_model("inventory", "Product"), old.get_model("inventory", "Stock")
        Location, Movement = old.get_model("inventory", "Location"), old.get_model("inventory", "StockMovement")
        here = Location.objects.get(pk=location_default_id())
        there = Location.objects.create(code="DARK-MIG", name="Dark store")
        months = [datetime(2025, 1, 15, tzinfo=timezone.utc), datetime(2025, 7, 31, 23, 30, tzinfo=timezone.utc),
                  datetime.now(timezone.utc)]
        expected = {}
        for n, code in enumerate(["MIG-A", "MIG-B"]):
            product = Product.objects.create(code=code, name=code, low_stock_threshold=1)
            for place in (here, there):
                total = 0
                for i, when in enumerate(months):
                    quantity = 10 * (n + 1) + i - (3 if i == 2 else 0)
                    total += quantity
                    row = Movement.objects.create(product=product, location=place, kind="receipt",
                                                  quantity=quantity, on_hand_after=total)
                    Movement.objects.filter(pk=row.pk).update(created_at=when)
                Stock.objects.create(product=product, location=place, on_hand=total)
                expected[(product.pk, place.pk)] = total
        last_id = Movement.objects.order_by("-id").values_list("id", flat=True)[0]
        rows_before = {m.pk: (m.product_id, m.location_id, m.quantity, m.created_at) for m in Movement.objects.all()}

        migrate(latest())

        rows_after = {m.pk: (m.product_id, m.location_id, m.quantity, m.created_at) for m in StockMovement.objects.all()}
        assert rows_after == rows_before
        sums = {}
        for (product_id, location_id, quantity, _when) in rows_after.values():
            sums[(product_id, location_id)] = sums.get((product_id, location_id), 0) + quantity
        assert {key: sums[key] for key in expected} == expected
        assert ledger_drift() == []
        for pk, (_p, _l, _q, when) in rows_after.items():
            assert partition_of(pk) == partition_name(when.astimezone(timezone.utc).date().replace(day=1))
        product = ProductFactory(code="MIG-NEW")
        assert stock_at_location(product, LocationFactory(code="DARK-MIG"), on_hand=1).on_hand == 1
        assert StockMovement.objects.get(product=product).pk > last_id
    finally:
        migrate(latest())


@pytest.mark.django_db(transaction=True)
def test_the_partitioning_migration_goes_back_to_a_plain_table_with_its_rows():
    product = ProductFactory(code="MIG-BACK", on_hand=9)
    row = StockMovement.objects.get(product=product)
    try:
        migrate([BEFORE_PARTITIONING])
        with connection.cursor() as cursor:
            cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [LEDGER_TABLE])
            kind = cursor.fetchone()[0]
            cursor.execute(f"SELECT quantity FROM {LEDGER_TABLE} WHERE id = %s", [row.pk])
            quantity = cursor.fetchone()[0]
        assert (kind, quantity) == ("r", 9)
    finally:
        migrate(latest())
    assert StockMovement.objects.get(pk=row.pk).quantity == 9


def test_beat_runs_the_partition_upkeep_daily_by_a_task_celery_knows():
    from django.conf import settings

    from config.celery_app import app

    entry = settings.CELERY_BEAT_SCHEDULE["ledger-partitions-ahead"]
    app.loader.import_default_modules()
    assert entry["task"] == "inventory.tasks.ledger_partitions_ensure_task"
    assert entry["task"] in app.tasks
    assert entry["schedule"].hour == {3}


# A closed month (before this one) for the rewrite in product order; its partition is dropped after each test.
PAST_MONTH = date(2020, 3, 1)
PAST = partition_name(PAST_MONTH)


def _interleaved_past_month(products, rounds: int = 6) -> None:
    """PAST_MONTH's rows as a month is written, every product in turn, each netting to zero, so the
    ledger still sums to on hand."""
    services.ledger_partitions_ensure(months_ahead=0, today=PAST_MONTH)
    with connection.cursor() as cursor:
        for n in range(rounds):
            for product in products:
                quantity = 2 if n % 2 == 0 else -2
                cursor.execute(
                    f"INSERT INTO {LEDGER_TABLE} (product_id, location_id, kind, quantity, on_hand_after, reason,"
                    " reference, actor, created_at) VALUES (%s, %s, %s, %s, 0, 'test', '', '', %s)",
                    [product.pk, location_default_id(), "receipt" if quantity > 0 else "sale", quantity,
                     datetime(2020, 3, 1 + n, 12, tzinfo=timezone.utc)])


def _past_rows_in_heap_order() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT id, product_id, location_id, kind, quantity, created_at FROM "{PAST}" ORDER BY ctid')
        return cursor.fetchall()


def _index_names(table: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s ORDER BY indexname", [table])
        return [row[0] for row in cursor.fetchall()]


def _page_ids(product) -> list[int]:
    return [row.pk for row in movement_page(product=product, locations=[location_default()], start=0, stop=100)]


@pytest.fixture
def past_month_dropped_after():
    yield
    with connection.cursor() as cursor:
        cursor.execute(f'DROP TABLE IF EXISTS "{PAST}"')
        cursor.execute(f'DROP TABLE IF EXISTS "{PAST}_sorting"')


def test_a_partition_name_gives_its_month_back_and_the_default_one_none():
    assert partition_month(partition_name(date(2031, 7, 1))) == date(2031, 7, 1)
    assert partition_month(LEDGER_DEFAULT_PARTITION) is None


@pytest.mark.django_db(transaction=True)
def test_a_closed_month_is_rewritten_in_product_order_with_every_row_its_indexes_and_keys(past_month_dropped_after):
    products = [ProductFactory(code=f"CLUSTER-{n}", on_hand=5) for n in range(4)]
    _interleaved_past_month(products)
    before = _past_rows_in_heap_order()
    indexes_before = _index_names(PAST)
    page_before = _page_ids(products[2])
    assert [row[1] for row in before[:4]] == [p.pk for p in products]  # each product in turn, as written

    rewritten = services.ledger_partitions_cluster()

    after = _past_rows_in_heap_order()
    assert rewritten == [PAST]
    assert sorted(after) == sorted(before)  # every row, unchanged
    assert after == sorted(before, key=lambda row: (row[1], row[2], row[0]))  # a pair's rows side by side
    assert PAST in partitions()
    assert _index_names(PAST) == indexes_before
    assert _page_ids(products[2]) == page_before
    assert ledger_drift() == []
    with connection.cursor() as cursor:
        assert partition_clustered(cursor, PAST)
        cursor.execute("SELECT count(*) FROM pg_constraint WHERE conrelid = to_regclass(%s) AND contype = 'f'"
                       " AND conparentid <> 0", [PAST])
        assert cursor.fetchone()[0] == 3  # product, location, transfer: the ledger's own, not copies
        cursor.execute("SELECT to_regclass(%s)", [f"{PAST}_sorting"])
        assert cursor.fetchone()[0] is None
    # The month keeps refusing a row of no product, as the ledger does.
    with pytest.raises(Exception, match="foreign key"):
        with psycopg.connect(_test_database_url(), autocommit=True) as conn:
            conn.execute(f"INSERT INTO {LEDGER_TABLE} (product_id, location_id, kind, quantity, on_hand_after, reason,"
                         " reference, actor, created_at) VALUES (987654321, %s, 'receipt', 1, 1, '', '', '', %s)",
                         [location_default_id(), datetime(2020, 3, 9, tzinfo=timezone.utc)])
    assert services.ledger_partitions_cluster() == []  # done once


@pytest.mark.django_db(transaction=True)
def test_this_month_and_the_coming_ones_are_never_rewritten(past_month_dropped_after):
    ProductFactory(code="CLUSTER-NOW", on_hand=3)
    this_month = partition_name(datetime.now(timezone.utc).date().replace(day=1))

    assert services.ledger_partitions_cluster() == []
    with connection.cursor() as cursor:
        assert not partition_clustered(cursor, this_month)


@pytest.mark.django_db(transaction=True)
def test_a_ledger_too_busy_for_the_swap_leaves_the_month_as_it_was(past_month_dropped_after, monkeypatch):
    products = [ProductFactory(code=f"BUSY-{n}", on_hand=2) for n in range(3)]
    _interleaved_past_month(products, rounds=2)
    before = _past_rows_in_heap_order()
    monkeypatch.setattr(partitions_module, "SWAP_LOCK_TIMEOUT_MS", 50)
    monkeypatch.setattr(partitions_module, "SWAP_ATTEMPTS", 3)

    # A long read of the ledger, still open: the swap's exclusive lock cannot be had.
    with psycopg.connect(_test_database_url()) as reader:
        reader.execute(f"SELECT count(*) FROM {LEDGER_TABLE}")
        with pytest.raises(Unavailable) as refused:
            services.ledger_partitions_cluster()

    assert refused.value.details["done"] == []
    assert _past_rows_in_heap_order() == before
    with connection.cursor() as cursor:
        assert not partition_clustered(cursor, PAST)
        cursor.execute("SELECT to_regclass(%s)", [f"{PAST}_sorting"])
        assert cursor.fetchone()[0] is None
    assert services.ledger_partitions_cluster() == [PAST]  # once the ledger is free


@pytest.mark.django_db(transaction=True)
def test_reads_during_the_rewrite_wait_at_most_the_swaps_lock_timeout_and_the_swap_gets_through(
        past_month_dropped_after, monkeypatch):
    products = [ProductFactory(code=f"LIVE-{n}", on_hand=4) for n in range(3)]
    _interleaved_past_month(products, rounds=4)
    monkeypatch.setattr(partitions_module, "SWAP_LOCK_TIMEOUT_MS", 200)
    outcome, reads = [], []

    def rewrite():
        try:
            outcome.append(services.ledger_partitions_cluster())
        except Exception as exc:  # noqa: BLE001 - the assertion below names it
            outcome.append(exc)
        finally:
            connections.close_all()

    with psycopg.connect(_test_database_url()) as holder:
        holder.execute(f"SELECT count(*) FROM {LEDGER_TABLE}")  # holds the ledger until released
        thread = threading.Thread(target=rewrite)
        thread.start()
        wait_for(lambda: _waiting_on_a_lock("ALTER TABLE"), "the rewrite never reached its swap")
        # Meanwhile a product's page is read again and again: each read waits at most one attempt.
        with psycopg.connect(_test_database_url(), autocommit=True) as reader:
            for _ in range(5):
                began = time.monotonic()
                rows = reader.execute(f"SELECT id FROM {LEDGER_TABLE} WHERE product_id = %s AND location_id = %s"
                                      " ORDER BY id DESC LIMIT 50", [products[1].pk, location_default_id()]).fetchall()
                reads.append((len(rows), time.monotonic() - began))
        holder.rollback()
    thread.join(timeout=60)

    assert outcome == [[PAST]]
    assert [count for count, _seconds in reads] == [5] * 5  # the 4 rows of March and the receipt of today
    assert max(seconds for _count, seconds in reads) < 5  # never held for the rewrite's whole length
    assert ledger_drift() == []


@pytest.mark.django_db(transaction=True)
def test_the_command_rewrites_the_closed_months_then_reports_none_left_and_lists_them(
        past_month_dropped_after, capsys):
    _interleaved_past_month([ProductFactory(code="CMD-CLUSTER", on_hand=1)], rounds=2)

    call_command("ledger_partitions", "--cluster-closed")
    first = capsys.readouterr().out
    call_command("ledger_partitions", "--cluster-closed", "--list")
    second = capsys.readouterr().out

    assert f"rewrote {PAST} in product order" in first
    assert "No closed month left to rewrite." in second
    assert any(line.startswith(f"{PAST}: ") and line.endswith("(in product order)") for line in second.splitlines())
    with pytest.raises(CommandError):
        call_command("ledger_partitions", "--cluster-closed", "-3")


@pytest.mark.django_db(transaction=True)
def test_the_beat_task_rewrites_as_many_closed_months_as_the_setting_says(past_month_dropped_after, settings):
    _interleaved_past_month([ProductFactory(code="TASK-CLUSTER", on_hand=1)], rounds=2)
    settings.LEDGER_PARTITION_CLUSTER_PER_RUN = 0
    ledger_partitions_ensure_task()
    with connection.cursor() as cursor:
        assert not partition_clustered(cursor, PAST)

    settings.LEDGER_PARTITION_CLUSTER_PER_RUN = 1
    ledger_partitions_ensure_task()
    with connection.cursor() as cursor:
        assert partition_clustered(cursor, PAST)
        cursor.execute("SELECT obj_description(to_regclass(%s), 'pg_class')", [PAST])
        assert cursor.fetchone()[0] == CLUSTERED_COMMENT


@pytest.mark.django_db
def test_the_rewrite_refuses_a_number_of_months_that_is_not_a_whole_number_from_zero():
    for bad in (-1, "2", True, 1.5):
        with pytest.raises(ValidationFailed):
            services.ledger_partitions_cluster(limit=bad)


# The movements page's index ordered by time (migration 0009), built month by month without holding writes.
BY_TIME, BY_ID = "movement_place_time_idx", "movement_place_recent_idx"
BEFORE_BY_TIME = ("inventory", "0008_stock_movement_count")


def _index_state(name: str) -> dict:
    """``valid``: the ledger's index ``name`` is valid (None: there is none); ``partitions``: the partitions
    without a valid index attached to it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [name])
        row = cursor.fetchone()
        cursor.execute(
            "SELECT c.relname FROM pg_inherits p JOIN pg_class c ON c.oid = p.inhrelid"
            " WHERE p.inhparent = to_regclass(%s) AND NOT EXISTS (SELECT 1 FROM pg_inherits i"
            " JOIN pg_index x ON x.indexrelid = i.inhrelid AND x.indisvalid"
            " WHERE i.inhparent = to_regclass(%s) AND x.indrelid = c.oid) ORDER BY c.relname", [LEDGER_TABLE, name])
        return {"valid": row[0] if row else None, "partitions": [r[0] for r in cursor.fetchall()]}


def _ledger_insert(conn, product_id: int, quantity: int) -> None:
    conn.execute(f"INSERT INTO {LEDGER_TABLE} (product_id, location_id, kind, quantity, on_hand_after, reason,"
                 " reference, actor, created_at) VALUES (%s, %s, 'receipt', %s, 0, 'test', '', '', now())",
                 [product_id, location_default_id(), quantity])


def _in_thread(work, outcome: list) -> threading.Thread:
    def run():
        try:
            outcome.append(work())
        except Exception as exc:  # noqa: BLE001 - the test's assertion names it
            outcome.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_the_time_ordered_index_is_built_on_every_partition_while_ledger_writes_go_on():
    product = ProductFactory(code="IDX-LIVE", on_hand=1)
    migrate([BEFORE_BY_TIME])
    try:
        assert _index_state(BY_TIME)["valid"] is None
        assert _index_state(BY_ID) == {"valid": True, "partitions": []}
        outcome = []
        # A long transaction elsewhere (a report, say): a partition's CONCURRENTLY build waits for it to end.
        with psycopg.connect(_test_database_url()) as long_running:
            long_running.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            long_running.execute("SELECT count(*) FROM inventory_location").fetchone()
            thread = _in_thread(lambda: migrate(latest()) and "done", outcome)
            wait_for(lambda: _waiting_on_a_lock("CREATE INDEX CONCURRENTLY"), "the build never waited")
            # Meanwhile writes go through at once, and land in the index being built.
            with psycopg.connect(_test_database_url(), autocommit=True) as other:
                other.execute("SET lock_timeout = '2s'")
                _ledger_insert(other, product.pk, 2)
                _ledger_insert(other, product.pk, 3)
            assert thread.is_alive() and outcome == []
            long_running.rollback()
        thread.join(timeout=60)
    finally:
        migrate(latest())

    assert outcome == ["done"]
    assert _index_state(BY_TIME) == {"valid": True, "partitions": []}
    assert _index_state(BY_ID)["valid"] is None
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        cursor.execute(f"EXPLAIN SELECT quantity FROM {LEDGER_TABLE} WHERE product_id = %s AND location_id = %s"
                       " ORDER BY created_at DESC, id DESC", [product.pk, location_default_id()])
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute(f"SELECT quantity FROM {LEDGER_TABLE} WHERE product_id = %s AND location_id = %s"
                       " ORDER BY created_at DESC, id DESC", [product.pk, location_default_id()])
        quantities = [row[0] for row in cursor.fetchall()]
        cursor.execute("RESET enable_seqscan")
    assert BY_TIME.removesuffix("_idx") in plan, plan
    assert quantities == [3, 2, 1]


@pytest.mark.django_db(transaction=True)
def test_a_write_in_progress_makes_the_build_wait_in_short_steps_that_let_other_writes_through():
    product = ProductFactory(code="IDX-WAIT", on_hand=1)
    name, columns = "movement_test_wait_idx", "(product_id, location_id, created_at DESC, id DESC)"
    outcome, waits = [], []

    def build():
        with connection.cursor() as cursor:
            return partitions_module.ledger_index_build_online(cursor, name=name, columns=columns,
                                                               lock_timeout_ms=200, attempts=100, retry_pause=0.1)

    try:
        with psycopg.connect(_test_database_url()) as writing:
            _ledger_insert(writing, product.pk, 2)  # not committed: the ledger's lock held
            thread = _in_thread(build, outcome)
            wait_for(lambda: _waiting_on_a_lock("CREATE INDEX IF NOT EXISTS"), "the build never waited")
            with psycopg.connect(_test_database_url(), autocommit=True) as other:
                for _ in range(3):
                    began = time.monotonic()
                    _ledger_insert(other, product.pk, 1)
                    waits.append(time.monotonic() - began)
            assert thread.is_alive() and outcome == []
            writing.commit()
        thread.join(timeout=60)

        assert outcome == [partitions()]
        assert max(waits) < 2  # each behind one short wait at most, never behind the write in progress
        assert _index_state(name) == {"valid": True, "partitions": []}
    finally:
        with connection.cursor() as cursor:
            partitions_module.ledger_index_drop(cursor, name=name)


@pytest.mark.django_db(transaction=True)
def test_going_back_builds_the_id_ordered_index_the_same_way():
    try:
        migrate([BEFORE_BY_TIME])
        assert _index_state(BY_ID) == {"valid": True, "partitions": []}
        assert _index_state(BY_TIME)["valid"] is None
    finally:
        migrate(latest())
    assert _index_state(BY_TIME) == {"valid": True, "partitions": []}


@pytest.mark.django_db(transaction=True)
def test_a_build_stopped_half_way_is_finished_by_the_next_run():
    columns = "(product_id, location_id, created_at DESC, id DESC) INCLUDE (quantity)"
    name = "movement_test_half_idx"
    every = partitions()
    # As a run stopped after one partition's build, before attaching it.
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE INDEX "{name}" ON ONLY "{LEDGER_TABLE}" {columns}')
        cursor.execute(f'CREATE INDEX "{every[1]}_{name}" ON "{every[1]}" {columns}')
    try:
        assert _index_state(name) == {"valid": False, "partitions": every}

        with connection.cursor() as cursor:
            built = partitions_module.ledger_index_build_online(cursor, name=name, columns=columns)
            again = partitions_module.ledger_index_build_online(cursor, name=name, columns=columns)

        assert built == [p for p in every if p != every[1]]
        assert again == []
        assert _index_state(name) == {"valid": True, "partitions": []}
    finally:
        with connection.cursor() as cursor:
            partitions_module.ledger_index_drop(cursor, name=name)
    assert _index_state(name)["valid"] is None


@pytest.mark.django_db(transaction=True)
def test_dropping_an_index_under_a_long_read_gives_up_after_its_attempts_then_gets_through():
    columns = "(product_id, location_id, created_at DESC, id DESC)"
    name = "movement_test_drop_idx"
    with connection.cursor() as cursor:
        partitions_module.ledger_index_build_online(cursor, name=name, columns=columns)
    try:
        with psycopg.connect(_test_database_url()) as reading:
            reading.execute(f"SELECT count(*) FROM {LEDGER_TABLE}")  # a read still open: its lock held
            began = time.monotonic()
            with pytest.raises(Exception) as refused, connection.cursor() as cursor:
                partitions_module.ledger_index_drop(cursor, name=name, lock_timeout_ms=100, attempts=3,
                                                    retry_pause=0.05)
            waited = time.monotonic() - began
            assert _index_state(name)["valid"] is True
            reading.rollback()
        assert caused_by(refused.value, psycopg.errors.LockNotAvailable)
        assert 0.3 <= waited < 5  # three short waits, not one long one
        with connection.cursor() as cursor:
            assert partitions_module.ledger_index_drop(cursor, name=name) is True
            assert partitions_module.ledger_index_drop(cursor, name=name) is False
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')
    assert _index_state(name)["valid"] is None
