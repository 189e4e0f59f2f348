"""Concurrency proofs for stock changes: real threads against PostgreSQL, each on its own connection."""
import threading

import pytest
from django.db import connection

from inventory import services
from inventory.models import Stock
from inventory.selectors import ledger_drift
from inventory.tests.factories import ProductFactory


def run_in_threads(count: int, work) -> list[BaseException]:
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def target(index: int) -> None:
        try:
            barrier.wait()
            work(index)
        except BaseException as exc:  # collected and asserted on by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


@pytest.mark.django_db(transaction=True)
def test_twenty_threads_adjusting_one_sku_leave_on_hand_exact():
    product = ProductFactory(code="HOT-1", on_hand=100)
    before = Stock.objects.get(product=product)

    # Even threads add 3, odd threads remove 2: net +10 over 20 threads.
    errors = run_in_threads(
        20,
        lambda i: services.stock_adjust(code="HOT-1", delta=3 if i % 2 == 0 else -2, reason=f"thread {i}"),
    )

    after = Stock.objects.get(product=product)
    assert errors == []
    assert (before.on_hand, after.on_hand) == (100, 110)
    assert after.version == before.version + 20
    assert ledger_drift() == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_removals_never_take_stock_below_zero():
    product = ProductFactory(code="LAST-5", on_hand=5)

    errors = run_in_threads(12, lambda i: services.stock_adjust(code="LAST-5", delta=-1, reason="sold at counter"))

    assert Stock.objects.get(product=product).on_hand == 0
    assert len(errors) == 7
    assert all(getattr(e, "code", None) == "conflict" for e in errors)
    assert ledger_drift() == []
