"""Tests for the database helpers: a deadlock retried until both transactions commit, the bounded reader
(a read's result or error, a TimeoutError past its budget, one thread whatever happens), and the circuit
that refuses at once while PostgreSQL refuses connections."""
import socket
import threading
import time
from collections import Counter

import psycopg
import pytest
from django.db import IntegrityError, connection
from django.db.models import F
from psycopg_pool import ConnectionPool, PoolTimeout

from core.db import (BoundedReader, DatabaseCircuit, atomic_with_retry, connect_params, pool_connection,
                     statements_prepared)
from core.errors import DatabaseDown
from inventory.models import Product, Stock, StockMovement
from inventory.services import stock_adjust
from inventory.tests.factories import ProductFactory


@pytest.mark.django_db(transaction=True)
def test_a_deadlock_is_retried_and_both_transactions_commit():
    first, second = (ProductFactory(code=code, on_hand=1).stocks.get().pk for code in ("DL-1", "DL-2"))
    holding_first = threading.Barrier(2, timeout=10)
    attempts: Counter = Counter()

    @atomic_with_retry()
    def both_rows_bumped(name: str, one: int, other: int) -> None:
        attempts[name] += 1
        Stock.objects.select_for_update().get(pk=one)
        if attempts[name] == 1:
            holding_first.wait()  # each holds its first row, then asks for the other's: PostgreSQL finds a deadlock
        Stock.objects.select_for_update().get(pk=other)
        Stock.objects.filter(pk__in=[one, other]).update(on_hand=F("on_hand") + 1)

    def run(name: str, one: int, other: int) -> None:
        try:
            both_rows_bumped(name, one, other)
        finally:
            connection.close()

    # Locks taken in opposite orders on purpose (the services never do): the deadlock is the test.
    threads = [threading.Thread(target=run, args=("a", first, second)),
               threading.Thread(target=run, args=("b", second, first))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(attempts.values()) == [1, 2]  # the victim was retried once, the other ran once
    assert sorted(Stock.objects.filter(pk__in=[first, second]).values_list("on_hand", flat=True)) == [3, 3]


@pytest.mark.django_db
def test_an_error_that_is_not_a_deadlock_is_not_retried():
    calls = []

    @atomic_with_retry()
    def failing() -> None:
        calls.append(1)
        raise IntegrityError("duplicate key")

    with pytest.raises(IntegrityError):
        failing()

    assert calls == [1]


@pytest.mark.django_db(transaction=True)  # the read runs on the reader's own connection: committed rows only
def test_a_read_gives_its_result_from_its_own_thread():
    ProductFactory(code="BR-1")
    reader = BoundedReader("test-reader")

    codes = reader.read(lambda: list(Product.objects.values_list("code", flat=True)), seconds=5)

    assert codes == ["BR-1"]


def test_a_read_that_fails_raises_its_own_error():
    def broken() -> None:
        raise ValueError("no such table")

    with pytest.raises(ValueError, match="no such table"):
        BoundedReader("test-reader").read(broken, seconds=5)


def test_a_stuck_read_times_out_and_the_next_caller_does_not_get_a_thread_of_its_own():
    reader, release = BoundedReader("test-stuck-reader"), threading.Event()
    try:
        with pytest.raises(TimeoutError):
            reader.read(release.wait, 10, seconds=0.1)
        # The one thread is still held: the next read queues behind it and times out too.
        with pytest.raises(TimeoutError):
            reader.read(lambda: "late", seconds=0.1)
        assert len([t for t in threading.enumerate() if t.name.startswith("test-stuck-reader")]) == 1
    finally:
        release.set()


# Nothing listens on port 1 of the loopback: a real refused connection, as from a stopped PostgreSQL.
REFUSED = "postgres://postgres@127.0.0.1:1/stockpulse"


class Target:
    """Where a test circuit's probes connect (refused or the test database), how many it made, and how
    many of those connection attempts have ended (answered, refused or given up by psycopg)."""

    def __init__(self, url: str = REFUSED) -> None:
        self.url, self.probes, self.ended = url, 0, 0

    def connect(self) -> None:
        self.probes += 1
        try:
            psycopg.connect(self.url, connect_timeout=2).close()
        finally:
            self.ended += 1


class RecordingPool(ConnectionPool):
    """Django's kind of pool, recording the wait each caller asked of it: a caller refused before it
    asks the pool adds nothing, one that waits the check time adds that time, not the pool's timeout."""

    def __init__(self, *args, **kwargs) -> None:
        self.waits: list[float | None] = []
        super().__init__(*args, **kwargs)

    def getconn(self, timeout: float | None = None):
        self.waits.append(timeout)
        return super().getconn(timeout=timeout)


def test_a_circuit_whose_probe_is_refused_refuses_every_caller_at_once_without_probing_again():
    target = Target()
    circuit = DatabaseCircuit(connect=target.connect)
    assert not circuit.is_open()

    assert circuit.reachable() is False

    for _ in range(50):
        with pytest.raises(DatabaseDown):
            circuit.check()
    assert circuit.is_open() and target.probes == 1


@pytest.mark.django_db(transaction=True)
def test_once_its_period_is_over_the_circuit_probes_again_and_closes_when_postgresql_answers(settings):
    settings.DB_DOWN_RETRY_SECONDS = 0.1
    target = Target()
    circuit = DatabaseCircuit(connect=target.connect)
    assert circuit.reachable() is False
    target.url = psycopg.conninfo.make_conninfo(**connect_params())  # PostgreSQL is back

    time.sleep(0.15)
    circuit.check()

    assert not circuit.is_open() and target.probes == 2


def test_a_pool_that_cannot_connect_gives_database_down_after_the_check_time_not_its_timeout(settings):
    settings.DB_DOWN_CHECK_SECONDS = 0.2
    pool = RecordingPool(REFUSED, min_size=0, max_size=2, timeout=10, open=True, name="refused")
    target = Target()
    circuit = DatabaseCircuit(connect=target.connect)
    try:
        with pytest.raises(DatabaseDown):
            pool_connection(pool, circuit)
        assert pool.waits == [0.2] and target.probes == 1  # the check time, then one probe: not the 10 s
        # The next caller is refused before it waits on the pool at all, and without a probe.
        with pytest.raises(DatabaseDown):
            pool_connection(pool, circuit)
        assert pool.waits == [0.2] and target.probes == 1
    finally:
        pool.close()


@pytest.mark.django_db(transaction=True)
def test_a_busy_pool_whose_postgresql_answers_is_waited_on_for_its_whole_timeout(settings):
    settings.DB_DOWN_CHECK_SECONDS = 0.1
    url = psycopg.conninfo.make_conninfo(**connect_params())
    pool = RecordingPool(url, min_size=1, max_size=1, timeout=0.6, open=True, name="busy")
    target = Target(url)
    circuit = DatabaseCircuit(connect=target.connect)
    held = pool.getconn(timeout=5)
    try:
        with pytest.raises(PoolTimeout):
            pool_connection(pool, circuit)
        # Overload: the check time, a probe PostgreSQL answers, then the rest of the pool's own wait.
        check, rest = pool.waits[1:]
        assert check == 0.1 and 0 < rest < 0.6 and target.probes == 1
        assert not circuit.is_open()
    finally:
        pool.putconn(held)
        pool.close()


def test_callers_that_meet_a_pool_that_cannot_connect_together_are_all_refused_after_one_probe(settings):
    settings.DB_DOWN_CHECK_SECONDS = 0.2
    pool = RecordingPool(REFUSED, min_size=0, max_size=2, timeout=10, open=True, name="refused-many")
    target = Target()
    circuit = DatabaseCircuit(connect=target.connect)
    start, refused = threading.Barrier(8, timeout=10), []

    def caller() -> None:
        start.wait()
        try:
            pool_connection(pool, circuit)
        except DatabaseDown:
            refused.append(True)

    threads = [threading.Thread(target=caller) for _ in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    finally:
        pool.close()

    assert len(refused) == 8
    assert target.probes == 1
    # Whoever asked the pool waited the check time, never its 10 s timeout.
    assert pool.waits and set(pool.waits) == {0.2}


def test_while_open_the_circuit_says_why_postgresql_was_refused():
    circuit = DatabaseCircuit(connect=Target().connect)
    circuit.reachable()

    with pytest.raises(DatabaseDown, match="PostgreSQL is unreachable: .*127.0.0.1.*port 1 failed"):
        circuit.check()


def test_a_probe_that_gets_no_answer_in_time_refuses_its_caller_but_does_not_open_the_circuit(settings):
    settings.DB_PROBE_SECONDS = 0.1
    with socket.socket() as silent:  # accepts TCP connections and never says a word, as a stalled server
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        target = Target(f"postgres://postgres@127.0.0.1:{silent.getsockname()[1]}/x")
        circuit = DatabaseCircuit(connect=target.connect)

        assert circuit.reachable() is False
        # The caller has its answer while the probe's connection attempt (2 s before psycopg gives up) still hangs.
        assert (target.probes, target.ended) == (1, 0)

    assert not circuit.is_open()
    circuit.check()  # nobody else is refused for it


def _ledger_statements_prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE statement LIKE %s",
                       ["%inventory_stockmovement%"])
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db
def test_reads_within_statements_prepared_are_prepared_once_and_the_connection_is_given_back_as_it_was():
    product = ProductFactory()
    stock_adjust(code=product.code, delta=5, reason="receipt")
    raw = connection.connection
    factory_before, threshold_before = raw.cursor_factory, raw.prepare_threshold
    assert _ledger_statements_prepared() == []

    for _ in range(3):
        with statements_prepared():
            counted = StockMovement.objects.filter(product=product).count()

    assert counted == 1
    prepared = _ledger_statements_prepared()
    # One prepared statement, reused by the second and third reads rather than prepared again.
    assert len(prepared) == 1 and "COUNT(*)" in prepared[0]
    assert (raw.cursor_factory, raw.prepare_threshold) == (factory_before, threshold_before)
    # Outside the block Django's client-side binding is back: nothing more is prepared.
    assert StockMovement.objects.filter(product=product).exists()
    assert len(_ledger_statements_prepared()) == 1


@pytest.mark.django_db
def test_with_prepared_reads_switched_off_nothing_is_prepared(settings):
    settings.DATABASE_PREPARED_READS = False
    product = ProductFactory()
    stock_adjust(code=product.code, delta=5, reason="receipt")

    with statements_prepared():
        counted = StockMovement.objects.filter(product=product).count()

    assert counted == 1
    assert _ledger_statements_prepared() == []


@pytest.mark.django_db
def test_an_error_within_statements_prepared_still_gives_the_connection_back_as_it_was():
    connection.ensure_connection()
    raw = connection.connection
    before = raw.cursor_factory, raw.prepare_threshold

    with pytest.raises(ZeroDivisionError), statements_prepared():
        1 / 0

    assert (raw.cursor_factory, raw.prepare_threshold) == before
