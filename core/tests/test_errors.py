"""The one exception handler: overload of the database pool is a 503 in the error shape, not a 500."""
import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from core.tests.factories import ApiClientFactory
from inventory.tests.factories import ProductFactory


@pytest.mark.django_db(transaction=True)
def test_a_request_that_finds_every_pooled_connection_busy_gets_503_with_retry_after():
    ProductFactory(code="POOL-1", on_hand=3)
    reader = ApiClientFactory(scopes=["read"])
    connection.ensure_connection()
    pool = connection.pool
    held, answers = [], []

    def get_snapshot() -> None:
        http = APIClient()
        http.credentials(HTTP_AUTHORIZATION=f"Bearer {reader.raw_token}")
        try:
            answers.append(http.get("/api/v1/stock/snapshot"))
        finally:
            connection.close()

    # Before: with a free connection the request is answered.
    thread = threading.Thread(target=get_snapshot)
    thread.start()
    thread.join()
    assert answers.pop().status_code == 200

    wait_before = pool.timeout
    pool.timeout = 0.2
    try:
        while pool.get_stats().get("pool_available", 0) or pool.get_stats()["pool_size"] < pool.max_size:
            held.append(pool.getconn(timeout=1))
        thread = threading.Thread(target=get_snapshot)
        thread.start()
        thread.join()
    finally:
        pool.timeout = wait_before
        for conn in held:
            pool.putconn(conn)

    answer = answers.pop()
    assert answer.status_code == 503
    assert answer["Retry-After"] == "1"
    assert answer.json() == {"error": {"code": "unavailable", "message": "The service is overloaded; try again shortly.",
                                       "details": {"retry_after": "1"}}}
