"""Tests for the bounded reader: a read's result or error, a TimeoutError past its budget, one thread whatever happens."""
import threading

import pytest

from core.db import BoundedReader
from inventory.models import Product
from inventory.tests.factories import ProductFactory


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
