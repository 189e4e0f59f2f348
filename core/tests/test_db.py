"""Tests for the database helpers: a deadlock retried until both transactions commit, and the bounded reader
(a read's result or error, a TimeoutError past its budget, one thread whatever happens)."""
import threading
from collections import Counter

import pytest
from django.db import IntegrityError, connection
from django.db.models import F

from core.db import BoundedReader, atomic_with_retry
from inventory.models import Product, Stock
from inventory.tests.factories import ProductFactory


@pytest.mark.django_db(transaction=True)
def test_a_deadlock_is_retried_and_both_transactions_commit():
    first, second = (ProductFactory(code=code, on_hand=1).stock.pk for code in ("DL-1", "DL-2"))
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
