"""Tests for the reservations REST API and the seed 001 /stock routes."""
from datetime import timedelta

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from inventory.models import Stock
from inventory.tests.factories import ProductFactory
from reservations import services
from reservations.models import Reservation, ReservationStatus
from reservations.views import LineSerializer, ReservationCreateInputSerializer

pytestmark = pytest.mark.django_db


def reserved_of(product) -> int:
    return Stock.objects.get(product=product).reserved


def post(http, url, body=None, **headers):
    return http.post(url, body if body is not None else {}, format="json", **headers)


def test_create_returns_201_with_lines_and_expiry(reserver):
    product = ProductFactory(code="ARROZ-5", on_hand=10)

    response = post(reserver, "/api/v1/reservations",
                    {"lines": [{"code": "arroz-5", "quantity": 2}], "ttl_seconds": 60, "reference": "cart-1"})

    assert response.status_code == 201
    body = response.json()
    assert body["lines"] == [{"code": "ARROZ-5", "location": "PRINCIPAL", "quantity": 2}]
    assert body["status"] == "active" and body["reference"] == "cart-1"
    assert Reservation.objects.get(pk=body["id"]).client == reserver.api_client
    assert reserved_of(product) == 2


def test_short_cart_gives_409_with_every_short_line(reserver):
    ProductFactory(code="A", on_hand=1)
    ProductFactory(code="B", on_hand=0)

    response = post(reserver, "/api/v1/reservations",
                    {"lines": [{"code": "A", "quantity": 2}, {"code": "B", "quantity": 1}]})

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "insufficient_stock"
    assert error["details"]["lines"] == [{"code": "A", "requested": 2, "available": 1},
                                         {"code": "B", "requested": 1, "available": 0}]


@pytest.mark.parametrize("body", [
    {"lines": []}, {"lines": "x"}, {}, {"lines": [{"code": "A", "quantity": 0}]},
    {"lines": [{"code": "A", "quantity": 1}], "ttl_seconds": 10},
    {"lines": [{"code": "A", "quantity": 1}], "ttl_seconds": 86401},
    {"lines": [{"code": "A", "quantity": 1}], "ttl_seconds": "abc"},
    # Too large for a duration at all: judged on the number, not a 500 building the timedelta.
    {"lines": [{"code": "A", "quantity": 1}], "ttl_seconds": 10**30},
    {"lines": [{"code": "A", "quantity": 1}], "ttl_seconds": -10**30},
    {"lines": [{"code": "A"}]}, [1, 2],
])
def test_bad_input_gives_400_in_error_shape(reserver, body):
    product = ProductFactory(code="A", on_hand=5)

    response = post(reserver, "/api/v1/reservations", body)

    assert response.status_code == 400
    assert set(response.json()["error"]) == {"code", "message", "details"}
    assert reserved_of(product) == 0


@pytest.mark.parametrize(("url", "body", "unknown"), [
    ("/api/v1/reservations", {"lines": [{"code": "A", "quantity": 1}], "location": "auto", "preference": ["X"]},
     ["preference"]),
    ("/api/v1/reservations", {"lines": [{"code": "A", "quantity": 1}, {"code": "A", "qty": 1, "quantity": 1}]},
     ["lines[1].qty"]),
    ("/stock/A/reserve", {"quantity": 1, "ttl": 60, "sku": "A"}, ["sku", "ttl"]),
])
def test_a_key_the_request_does_not_take_is_refused_naming_it(reserver, url, body, unknown):
    product = ProductFactory(code="A", on_hand=5)

    response = post(reserver, url, body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["details"]["unknown_fields"] == unknown
    assert error["message"].startswith(f"Campo desconhecido: {unknown[0]}")  # no Accept-Language: pt-BR
    assert reserved_of(product) == 0 and Reservation.objects.count() == 0


def test_the_keys_the_service_takes_are_the_fields_the_schema_documents():
    # The view and the fast path check keys against these sets without running a serializer (hot path).
    components = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]

    assert services.CART_FIELDS == set(ReservationCreateInputSerializer().fields)
    assert services.LINE_FIELDS == set(LineSerializer().fields)
    assert services.STOCK_RESERVE_FIELDS == set(components["StockReserveInputRequest"]["properties"])


def test_unknown_code_gives_404(reserver):
    response = post(reserver, "/api/v1/reservations", {"lines": [{"code": "NOPE", "quantity": 1}]})
    assert response.status_code == 404
    assert response.json()["error"]["details"]["codes"] == ["NOPE"]


def test_scope_reserve_required(reader):
    ProductFactory(code="A", on_hand=5)
    response = post(reader, "/api/v1/reservations", {"lines": [{"code": "A", "quantity": 1}]})
    assert response.status_code == 403


def test_idempotency_key_replays_same_response_and_refuses_other_body(reserver):
    product = ProductFactory(code="A", on_hand=5)
    body = {"lines": [{"code": "A", "quantity": 1}]}

    first = post(reserver, "/api/v1/reservations", body, HTTP_IDEMPOTENCY_KEY="abc")
    second = post(reserver, "/api/v1/reservations", body, HTTP_IDEMPOTENCY_KEY="abc")
    other = post(reserver, "/api/v1/reservations", {"lines": [{"code": "A", "quantity": 2}]},
                 HTTP_IDEMPOTENCY_KEY="abc")

    assert (first.status_code, second.status_code, other.status_code) == (201, 201, 422)
    assert first.json() == second.json()
    assert reserved_of(product) == 1


def test_get_confirm_release_lifecycle(reserver):
    product = ProductFactory(code="A", on_hand=5)
    created = post(reserver, "/api/v1/reservations", {"lines": [{"code": "A", "quantity": 2}]}).json()
    url = f"/api/v1/reservations/{created['id']}"

    assert reserver.get(url).json() == created
    confirmed = post(reserver, url + "/confirm")
    again = post(reserver, url + "/confirm")
    release = post(reserver, url + "/release")

    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    assert again.status_code == 200 and again.json() == confirmed.json()
    assert release.status_code == 409
    stock = Stock.objects.get(product=product)
    assert (stock.on_hand, stock.reserved) == (3, 0)


def test_confirm_released_gives_409(reserver):
    ProductFactory(code="A", on_hand=5)
    created = post(reserver, "/api/v1/reservations", {"lines": [{"code": "A", "quantity": 2}]}).json()
    url = f"/api/v1/reservations/{created['id']}"

    assert post(reserver, url + "/release").json()["status"] == "released"
    assert post(reserver, url + "/release").status_code == 200
    assert post(reserver, url + "/confirm").status_code == 409


def test_confirm_past_ttl_gives_410_before_any_sweep(reserver):
    product = ProductFactory(code="A", on_hand=5)
    created = post(reserver, "/api/v1/reservations", {"lines": [{"code": "A", "quantity": 5}]}).json()
    Reservation.objects.filter(pk=created["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    url = f"/api/v1/reservations/{created['id']}"
    assert reserver.get(url).json()["status"] == "expired"

    response = post(reserver, url + "/confirm")

    assert response.status_code == 410
    assert response.json()["error"]["code"] == "gone"
    assert reserved_of(product) == 0


def test_extend_moves_expiry_and_rejects_out_of_range(reserver):
    ProductFactory(code="A", on_hand=5)
    created = post(reserver, "/api/v1/reservations",
                   {"lines": [{"code": "A", "quantity": 1}], "ttl_seconds": 60}).json()
    url = f"/api/v1/reservations/{created['id']}/extend"

    extended = post(reserver, url, {"ttl_seconds": 1800})

    assert extended.status_code == 200
    assert extended.json()["expires_at"] > created["expires_at"]
    assert post(reserver, url, {"ttl_seconds": 5}).status_code == 400
    assert post(reserver, url, {}).status_code == 400


def test_extend_by_a_number_too_large_for_a_duration_is_a_400_and_changes_nothing(reserver):
    ProductFactory(code="A", on_hand=5)
    created = post(reserver, "/api/v1/reservations", {"lines": [{"code": "A", "quantity": 1}]}).json()

    response = post(reserver, f"/api/v1/reservations/{created['id']}/extend", {"ttl_seconds": 10**30})

    assert response.status_code == 400
    assert response.json()["error"]["details"]["max"] == 86400
    assert reserver.get(f"/api/v1/reservations/{created['id']}").json()["expires_at"] == created["expires_at"]


def test_other_clients_reservations_are_404(reserver, api_client_with_scopes):
    ProductFactory(code="A", on_hand=5)
    created = post(reserver, "/api/v1/reservations", {"lines": [{"code": "A", "quantity": 1}]}).json()
    intruder = api_client_with_scopes("reserve")
    url = f"/api/v1/reservations/{created['id']}"

    assert intruder.get(url).status_code == 404
    assert post(intruder, url + "/confirm").status_code == 404
    assert post(intruder, url + "/release").status_code == 404
    assert intruder.get("/api/v1/reservations").json()["results"] == []
    assert reserver.get("/api/v1/reservations?status=active").json()["count"] == 1
    assert reserver.get("/api/v1/reservations/not-a-uuid").status_code == 404
    assert Reservation.objects.get(pk=created["id"]).status == ReservationStatus.ACTIVE


def test_seed_routes_reserve_and_confirm(reserver):
    product = ProductFactory(code="SKU-001", on_hand=1)

    reserved = post(reserver, "/stock/SKU-001/reserve")
    out = post(reserver, "/stock/SKU-001/reserve", {"quantity": 1})
    confirmed = post(reserver, "/stock/confirm", {"reservation_id": reserved.json()["reservation_id"]})

    assert reserved.status_code == 200 and reserved.json()["quantity"] == 1 and reserved.json()["expires_at"]
    assert out.status_code == 409
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    stock = Stock.objects.get(product=product)
    assert (stock.on_hand, stock.reserved) == (0, 0)


def test_seed_reserve_route_takes_ttl_seconds_like_the_api(reserver):
    ProductFactory(code="SKU-003", on_hand=5)

    reserved = post(reserver, "/stock/SKU-003/reserve", {"quantity": 2, "ttl_seconds": 120})
    too_short = post(reserver, "/stock/SKU-003/reserve", {"ttl_seconds": 1})

    assert reserved.status_code == 200
    reservation = Reservation.objects.get(pk=reserved.json()["reservation_id"])
    assert (reservation.expires_at - reservation.created_at).total_seconds() == pytest.approx(120, abs=1)
    assert too_short.status_code == 400 and too_short.json()["error"]["code"] == "invalid"
    assert Stock.objects.get(product__code="SKU-003").reserved == 2


def test_seed_confirm_expired_gives_410(reserver):
    ProductFactory(code="SKU-002", on_hand=1)
    reservation_id = post(reserver, "/stock/SKU-002/reserve").json()["reservation_id"]
    Reservation.objects.filter(pk=reservation_id).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert post(reserver, "/stock/confirm", {"reservation_id": reservation_id}).status_code == 410
    assert post(reserver, "/stock/confirm", {}).status_code == 400
