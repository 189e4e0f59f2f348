"""The one exception handler: overload of the database pool is a 503, and no awkward body on any write route is a
500; every refusal is in the error shape. Django's handler500: an unreachable database is a 503, a page for a browser."""
import json
import threading

import pytest
from django.db import OperationalError, connection
from django.utils import translation
from rest_framework.test import APIClient

from core.tests.awkward import bodies_with_each_field_awkward
from core.errors import DatabaseDown, json_500
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
            answers.append(http.get("/api/v1/stock/snapshot", HTTP_ACCEPT_LANGUAGE="en"))
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


# Each write route with a body it accepts; every field is replaced by every awkward value in turn.
WRITES = [
    ("post", "/api/v1/reservations", {"lines": [{"code": "HOT-1", "quantity": 1}], "ttl_seconds": 60, "reference": "r"}),
    ("post", "/stock/HOT-1/reserve", {"quantity": 1}),
    ("post", "/stock/confirm", {"reservation_id": "00000000-0000-0000-0000-000000000000"}),
    # The body is judged before the id is looked up.
    ("post", "/api/v1/reservations/00000000-0000-0000-0000-000000000000/extend", {"ttl_seconds": 60}),
    ("post", "/api/v1/stock/HOT-1/movements", {"kind": "receipt", "quantity": 5, "reason": "r"}),
    ("post", "/api/v1/products", {"code": "NEW-1", "name": "n", "category": "c", "low_stock_threshold": 1}),
    ("post", "/api/v1/products/HOT-1/unified-codes", {"code": "ALIAS-1"}),
    ("post", "/api/v1/planned-movements", {"source_ref": "s1", "code": "HOT-1", "date": "2026-12-05",
                                           "direction": "in", "quantity": 5, "kind": "purchase"}),
    ("post", "/api/v1/planned-movements/bulk", {"items": [{"source_ref": "s2", "code": "HOT-1", "date": "2026-12-05",
                                                           "direction": "out", "quantity": 5, "kind": "sale"}]}),
    ("post", "/api/v1/projections/query", {"codes": ["HOT-1"]}),
    ("post", "/api/v1/stock/lookup", {"codes": ["HOT-1"]}),
    ("post", "/api/v1/webhooks/endpoints", {"url": "http://127.0.0.1:9/h", "event_types": ["stock.changed"]}),
    ("post", "/api/v1/webhooks/deliveries/redeliver", {"ids": [1]}),
    ("post", "/api/v1/orders", {"lines": [{"code": "HOT-1", "quantity": 1}]}),
    ("post", "/api/v1/stock/import?dry_run=1", {"items": [{"code": "HOT-1", "on_hand": 5}]}),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path", "body"), WRITES, ids=[f"{m} {p}" for m, p, _ in WRITES])
def test_every_awkward_body_on_a_write_route_is_answered_below_500_in_the_error_shape(api_client_with_scopes, method,
                                                                                      path, body):
    ProductFactory(code="HOT-1", on_hand=1000)
    http = api_client_with_scopes("read", "reserve", "manage")
    answered = []

    for text in bodies_with_each_field_awkward(body):
        response = getattr(http, method)(path, text, content_type="application/json")
        answered.append(response.status_code)
        assert response.status_code < 500, (text[:200], response.content[:300])
        if response.status_code >= 400:
            assert set(response.json()["error"]) == {"code", "message", "details"}, text[:200]

    # Most of them are refused: the route is really judging what it is sent.
    assert sum(status >= 400 for status in answered) > len(answered) / 2


AWKWARD_QUERY_VALUES = ["", "-1", "0", "1.5", "1e400", "99999999999999999999999999", "abc", "true", "x" * 3000,
                        "%F0%9F%92%A5", "2026-13-45", "a,b,,c", ",", "null"]
# Each read route and the query parameters it takes (its filters and pagination).
READS = [
    ("/api/v1/stock/", ["category", "below_threshold", "out_of_stock", "search", "page", "page_size"]),
    ("/api/v1/stock/snapshot", ["codes", "category"]),
    ("/api/v1/products", ["page", "page_size"]),
    ("/api/v1/reservations", ["status", "page", "page_size"]),
    ("/api/v1/projections/ruptures", ["days", "limit", "offset"]),
    ("/api/v1/projections/HOT-1", ["days"]),
    ("/api/v1/projections/HOT-1/daily", ["days"]),
    ("/api/v1/planned-movements", ["code", "source", "status", "kind", "date_from", "date_to", "page", "page_size"]),
    ("/api/v1/webhooks/deliveries", ["endpoint", "status", "event_type", "page", "page_size"]),
    ("/api/v1/webhooks/endpoints", ["page", "page_size"]),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "params"), READS, ids=[p for p, _ in READS])
def test_every_awkward_query_on_a_read_route_is_answered_below_500_in_the_error_shape(api_client_with_scopes, path,
                                                                                     params):
    ProductFactory(code="HOT-1", on_hand=10)
    http = api_client_with_scopes("read", "reserve", "manage")

    for param in params:
        for value in AWKWARD_QUERY_VALUES:
            response = http.get(f"{path}?{param}={value}")
            assert response.status_code < 500, (param, value[:50], response.content[:300])
            if response.status_code >= 400:
                assert set(response.json()["error"]) == {"code", "message", "details"}, (param, value[:50])


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/planned-movements/99999999999999999999999", "/api/v1/orders/not-an-id",
                                  "/api/v1/reservations/not-an-id", "/api/v1/webhooks/endpoints/99999999999999999999999",
                                  "/api/v1/stock/" + "X" * 3000 + "/", "/api/v1/projections/" + "X" * 3000])
def test_awkward_ids_in_the_path_are_answered_below_500_in_the_error_shape(api_client_with_scopes, path):
    http = api_client_with_scopes("read", "reserve", "manage")

    response = http.get(path)

    assert 400 <= response.status_code < 500
    assert set(response.json()["error"]) == {"code", "message", "details"}


def _answer_to_error(request, error: Exception):
    """Django's handler500 as Django calls it: while the error is being handled."""
    try:
        raise error
    except Exception:
        return json_500(request)


def _database_down() -> OperationalError:
    try:
        raise OperationalError("PostgreSQL is unreachable.") from DatabaseDown()
    except OperationalError as wrapped:  # as Django's wrap_database_errors raises it
        return wrapped


def test_an_unhandled_error_is_a_500_in_the_error_shape(rf):
    response = _answer_to_error(rf.get("/estoque"), ValueError("bug"))

    assert response.status_code == 500
    assert json.loads(response.content)["error"]["code"] == "internal_error"


def test_an_unreachable_database_outside_drf_is_a_503_with_retry_after_in_the_error_shape(rf):
    with translation.override("en"):  # as LocaleMiddleware leaves it for an English request
        response = _answer_to_error(rf.get("/estoque", HTTP_ACCEPT="application/json"), _database_down())

    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert json.loads(response.content) == {"error": {
        "code": "unavailable", "message": "The database is unavailable; try again shortly.",
        "details": {"retry_after": "1"}}}


def test_an_unreachable_database_on_a_browser_s_page_is_a_503_page_in_the_request_s_language(rf):
    request = rf.get("/admin/", HTTP_ACCEPT="text/html,*/*;q=0.8")
    with translation.override("pt-br"):
        response = _answer_to_error(request, _database_down())
    with translation.override("en"):
        english = _answer_to_error(request, _database_down())

    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response["Content-Type"].startswith("text/html")
    assert "Temporariamente indisponível" in response.content.decode()
    assert "Temporarily unavailable" in english.content.decode()


def test_an_api_route_answers_json_even_to_a_browser(rf):
    response = _answer_to_error(rf.get("/api/v1/stock/", HTTP_ACCEPT="text/html"), _database_down())

    assert response.status_code == 503
    assert json.loads(response.content)["error"]["code"] == "unavailable"
