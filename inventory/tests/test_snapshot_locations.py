"""Tests of the snapshot a live client reloads, by location: the same location set as its stream, rows per location."""
from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from core.tests.factories import ApiClientFactory
from inventory.services import stock_receive
from inventory.tests.factories import LocationFactory, ProductFactory, stock_at_location

pytestmark = pytest.mark.django_db


@pytest.fixture
def dark():
    return LocationFactory(code="DARK-ZS", name="Dark store Zona Sul")


def _http(*, locations=()):
    record = ApiClientFactory(scopes=["read"], location_codes=list(locations))
    http = APIClient()
    http.credentials(HTTP_AUTHORIZATION=f"Bearer {record.raw_token}")
    return http


def _rows(response):
    assert response.status_code == 200, response.content
    return [(i["code"], i["location"], i["on_hand"], i["version"]) for i in response.json()["items"]]


def test_snapshot_of_several_locations_has_one_row_per_product_and_location_with_its_version(reader, dark):
    product = ProductFactory(code="SNAP-1", on_hand=7)
    stock_at_location(product, dark, on_hand=3)
    stock_receive(code="SNAP-1", quantity=1, location="DARK-ZS")

    rows = _rows(reader.get("/api/v1/stock/snapshot", {"locations": "PRINCIPAL,dark-zs"}))

    assert rows == [("SNAP-1", "DARK-ZS", 4, 2), ("SNAP-1", "PRINCIPAL", 7, 1)]


def test_snapshot_of_all_locations_is_what_the_client_may_see(dark):
    product = ProductFactory(code="SNAP-2", on_hand=7)
    stock_at_location(product, dark, on_hand=3)

    every = _rows(_http().get("/api/v1/stock/snapshot", {"locations": "all"}))
    limited = _rows(_http(locations=["DARK-ZS"]).get("/api/v1/stock/snapshot", {"locations": "ALL"}))

    assert every == [("SNAP-2", "DARK-ZS", 3, 1), ("SNAP-2", "PRINCIPAL", 7, 1)]
    assert limited == [("SNAP-2", "DARK-ZS", 3, 1)]


def test_snapshot_of_one_code_at_several_locations_reloads_that_product_only(reader, dark):
    first = ProductFactory(code="SNAP-3", on_hand=1)
    stock_at_location(first, dark, on_hand=2)
    stock_at_location(ProductFactory(code="SNAP-4", on_hand=1), dark, on_hand=9)

    rows = _rows(reader.get("/api/v1/stock/snapshot", {"locations": "DARK-ZS,PRINCIPAL", "codes": "SNAP-3"}))

    assert rows == [("SNAP-3", "DARK-ZS", 2, 1), ("SNAP-3", "PRINCIPAL", 1, 1)]


def test_snapshot_without_locations_answers_the_default_location_as_before(reader, dark):
    stock_at_location(ProductFactory(code="SNAP-5", on_hand=7), dark, on_hand=3)

    assert _rows(reader.get("/api/v1/stock/snapshot")) == [("SNAP-5", "PRINCIPAL", 7, 1)]


def test_snapshot_of_a_location_the_client_may_not_use_is_403(dark):
    response = _http(locations=["DARK-ZS"]).get("/api/v1/stock/snapshot", {"locations": "DARK-ZS,PRINCIPAL"})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "location_forbidden"
    assert response.json()["error"]["details"]["locations"] == ["PRINCIPAL"]


@pytest.mark.parametrize(("params", "code"), [
    ({"locations": "DARK-ZS,NOWHERE"}, "unknown_location"),
    ({"locations": " , "}, "invalid"),
    ({"locations": "DARK-ZS", "location": "DARK-ZS"}, "invalid"),
])
def test_snapshot_with_bad_locations_is_400_in_the_error_shape(reader, dark, params, code):
    response = reader.get("/api/v1/stock/snapshot", params)

    assert response.status_code == 400
    assert set(response.json()) == {"error"} and response.json()["error"]["code"] == code


def test_projection_columns_follow_the_default_location_only(reader, dark):
    from projections.services import projection_recompute, projection_today
    from projections.tests.factories import PlannedMovementFactory

    product = ProductFactory(code="SNAP-6", on_hand=10)
    stock_at_location(product, dark, on_hand=50)
    stockout = projection_today() + timedelta(days=3)
    PlannedMovementFactory(product=product, date=stockout, quantity=15)
    projection_recompute(product_ids=[product.pk])

    body = reader.get("/api/v1/stock/snapshot", {"locations": "all", "fields": "projection"}).json()

    assert [(i["location"], i["stockout_date"]) for i in body["items"]] == [
        ("DARK-ZS", None), ("PRINCIPAL", stockout.isoformat())]


def test_snapshot_for_a_staff_session_limited_to_a_store_keeps_to_it(limited, stores):
    store_a, store_b = stores
    product = ProductFactory(code="SNAP-7", on_hand=7)
    stock_at_location(product, store_a, on_hand=1)
    stock_at_location(product, store_b, on_hand=2)

    every = _rows(limited.get("/api/v1/stock/snapshot", {"locations": "all"}))
    refused = limited.get("/api/v1/stock/snapshot", {"locations": "LOJA-A,LOJA-B"})

    assert every == [("SNAP-7", "LOJA-A", 1, 1)]
    assert refused.status_code == 403 and refused.json()["error"]["details"]["locations"] == ["LOJA-B"]
