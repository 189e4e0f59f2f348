"""Tests for the location side of the inventory API: locations, stock per location and in sum, transfers, 403s."""
import pytest
from rest_framework.test import APIClient

from core.tests.factories import ApiClientFactory
from inventory.selectors import location_default, stock_at
from inventory.tests.factories import LocationFactory, ProductFactory, stock_at_location

pytestmark = pytest.mark.django_db


@pytest.fixture
def store_b():
    return LocationFactory(code="LOJA-B", name="Loja B")


def _http(*scopes, locations=()):
    record = ApiClientFactory(scopes=list(scopes), location_codes=list(locations))
    http = APIClient()
    http.credentials(HTTP_AUTHORIZATION=f"Bearer {record.raw_token}")
    return http


def test_routes_without_location_answer_as_a_single_store_did(reader, store_b):
    product = ProductFactory(on_hand=7)
    stock_at_location(product, store_b, on_hand=100)

    detail = reader.get(f"/api/v1/stock/{product.code}/").json()
    listed = reader.get("/api/v1/stock/").json()["results"]

    assert (detail["on_hand"], detail["location"]) == (7, location_default().code)
    assert [(row["code"], row["on_hand"]) for row in listed] == [(product.code, 7)]


def test_location_all_gives_every_location_and_the_sum(reader, store_b):
    product = ProductFactory(on_hand=7)
    stock_at_location(product, store_b, on_hand=5)

    body = reader.get(f"/api/v1/stock/{product.code}/?location=all").json()

    assert [(row["location"], row["on_hand"]) for row in body["locations"]] == [
        (location_default().code, 7), ("LOJA-B", 5)]
    assert body["total"] == {"on_hand": 12, "reserved": 0, "available": 12}


def test_stock_at_a_named_location_and_zero_where_never_stocked(reader, store_b):
    product = ProductFactory(on_hand=7)
    at_b = reader.get(f"/api/v1/stock/{product.code}/?location=loja-b").json()
    looked_up = reader.post("/api/v1/stock/lookup", {"codes": [product.code], "location": "LOJA-B"},
                            format="json").json()

    assert (at_b["location"], at_b["on_hand"], at_b["available"]) == ("LOJA-B", 0, 0)
    assert [(i["code"], i["on_hand"]) for i in looked_up["items"]] == [(product.code, 0)]


def test_an_unknown_location_is_a_400_in_the_error_shape(reader):
    product = ProductFactory(on_hand=7)
    response = reader.get(f"/api/v1/stock/{product.code}/?location=NOWHERE")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_location"


def test_a_client_for_store_b_cannot_read_or_reserve_at_another_store(store_b):
    product = ProductFactory(on_hand=7)
    stock_at_location(product, store_b, on_hand=5)
    http = _http("read", "reserve", locations=["LOJA-B"])

    forbidden_read = http.get(f"/api/v1/stock/{product.code}/")
    forbidden_reserve = http.post("/api/v1/reservations", {"lines": [{"code": product.code, "quantity": 1}]},
                                  format="json")
    allowed = http.post("/api/v1/reservations", {"location": "LOJA-B",
                                                 "lines": [{"code": product.code, "quantity": 1}]}, format="json")
    everything = http.get(f"/api/v1/stock/{product.code}/?location=all").json()

    assert (forbidden_read.status_code, forbidden_reserve.status_code, allowed.status_code) == (403, 403, 201)
    assert forbidden_read.json()["error"]["code"] == "location_forbidden"
    assert allowed.json()["lines"] == [{"code": product.code, "location": "LOJA-B", "quantity": 1}]
    assert [row["location"] for row in everything["locations"]] == ["LOJA-B"]
    assert stock_at(product=product, location=location_default()).reserved == 0


def test_locations_list_shows_the_default_first_and_only_what_the_client_may_use(reader, store_b):
    LocationFactory(code="ARMAZEM", kind="warehouse")
    codes = [row["code"] for row in reader.get("/api/v1/locations").json()]
    limited = [row["code"] for row in _http("read", locations=["LOJA-B"]).get("/api/v1/locations").json()]

    assert codes == [location_default().code, "ARMAZEM", "LOJA-B"]
    assert limited == ["LOJA-B"]


def test_transfers_api_moves_receives_and_lists(manager, store_b):
    product = ProductFactory(on_hand=10)

    created = manager.post("/api/v1/transfers", {"code": product.code, "source": location_default().code,
                                                 "destination": "LOJA-B", "quantity": 4, "in_transit": True},
                           format="json")
    assert created.status_code == 201, created.json()
    transfer = created.json()
    assert (transfer["status"], stock_at(product=product, location=location_default()).on_hand) == ("shipped", 6)

    received = manager.post(f"/api/v1/transfers/{transfer['id']}/receive")
    listed = manager.get("/api/v1/transfers?location=LOJA-B").json()["results"]
    movements = manager.get(f"/api/v1/stock/{product.code}/movements?location=all").json()["results"]

    assert received.json()["status"] == "received"
    assert [row["id"] for row in listed] == [transfer["id"]]
    assert stock_at(product=product, location=store_b).on_hand == 4
    assert {(m["location"], m["kind"], m["quantity"]) for m in movements if m["transfer_id"]} == {
        (location_default().code, "transfer_out", -4), ("LOJA-B", "transfer_in", 4)}


def test_transfer_errors_are_4xx_in_one_shape(manager, store_b):
    product = ProductFactory(on_hand=2)
    short = manager.post("/api/v1/transfers", {"code": product.code, "source": location_default().code, "destination": "LOJA-B",
                                               "quantity": 3}, format="json")
    missing = manager.post("/api/v1/transfers/999999/receive")
    invalid = manager.post("/api/v1/transfers", {"code": product.code, "destination": "LOJA-B"}, format="json")

    assert (short.status_code, missing.status_code, invalid.status_code) == (409, 404, 400)
    assert short.json()["error"]["code"] == "insufficient_stock"
    assert set(invalid.json()["error"]) == {"code", "message", "details"}
