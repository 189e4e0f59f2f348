"""Orders API: 202 on accept, idempotent replays, lines placed at their locations, the owner's view of status and
steps, clear 4xx answers."""
import pytest

from inventory.models import Stock
from inventory.tests.factories import ProductFactory, stores_stocking
from orders.models import Order


@pytest.mark.django_db
def test_post_answers_202_with_the_received_order(reserver):
    ProductFactory(code="SUCO-1", on_hand=5)

    response = reserver.post("/api/v1/orders", {"lines": [{"code": "suco-1", "quantity": 2}]}, format="json")

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "received"
    assert body["lines"] == [{"code": "SUCO-1", "location": "PRINCIPAL", "quantity": 2}]
    assert response["Location"] == f"/api/v1/orders/{body['id']}"
    assert Order.objects.filter(pk=body["id"]).exists()


@pytest.mark.django_db
def test_post_from_a_reservation(reserver):
    ProductFactory(code="SUCO-2", on_hand=5)
    reservation = reserver.post("/api/v1/reservations", {"lines": [{"code": "SUCO-2", "quantity": 1}]},
                                format="json").json()

    response = reserver.post("/api/v1/orders", {"reservation_id": reservation["id"]}, format="json")

    assert response.status_code == 202 and response.json()["reservation_id"] == reservation["id"]


@pytest.mark.django_db
def test_repeated_post_with_the_same_key_is_one_order(reserver):
    ProductFactory(code="SUCO-3", on_hand=5)
    body = {"lines": [{"code": "SUCO-3", "quantity": 1}]}

    first = reserver.post("/api/v1/orders", body, format="json", HTTP_IDEMPOTENCY_KEY="cart-77")
    again = reserver.post("/api/v1/orders", body, format="json", HTTP_IDEMPOTENCY_KEY="cart-77")

    assert again.status_code == 202 and again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert Order.objects.count() == 1


@pytest.mark.django_db
def test_get_shows_status_and_steps_to_the_owner_only(reserver, api_client_with_scopes):
    ProductFactory(code="SUCO-4", on_hand=5)
    order_id = reserver.post("/api/v1/orders", {"lines": [{"code": "SUCO-4", "quantity": 1}]},
                             format="json").json()["id"]
    stranger = api_client_with_scopes("read", "reserve")

    mine = reserver.get(f"/api/v1/orders/{order_id}")
    theirs = stranger.get(f"/api/v1/orders/{order_id}")

    assert mine.status_code == 200 and [s["step"] for s in mine.json()["steps"]] == ["received"]
    assert theirs.status_code == 404 and theirs.json()["error"]["code"] == "not_found"


@pytest.mark.django_db
@pytest.mark.parametrize("body, status, code", [
    ({}, 400, "invalid"),
    ({"reservation_id": "x", "lines": [{"code": "A", "quantity": 1}]}, 400, "invalid"),
    ({"lines": [{"code": "SUCO-5", "quantity": 0}]}, 400, "invalid"),
    ({"lines": [{"code": "NOPE", "quantity": 1}]}, 404, "unknown_code"),
    ({"lines": [{"code": "SUCO-5", "quantity": 50}]}, 409, "insufficient_stock"),
    ({"reservation_id": "not-a-uuid"}, 404, "not_found"),
    ([1, 2], 400, "invalid"),
])
def test_bad_orders_get_a_clear_error_and_write_nothing(reserver, body, status, code):
    ProductFactory(code="SUCO-5", on_hand=5)

    response = reserver.post("/api/v1/orders", body, format="json")

    assert response.status_code == status and response.json()["error"]["code"] == code
    assert Order.objects.count() == 0


@pytest.mark.django_db
def test_reading_clients_cannot_order(reader):
    response = reader.post("/api/v1/orders", {"lines": [{"code": "X", "quantity": 1}]}, format="json")

    assert response.status_code == 403


@pytest.mark.django_db
def test_an_order_of_lines_is_placed_at_the_locations_it_names(reserver):
    store_a, store_b = stores_stocking("SUCO-6", "SUCO-7")
    before = {(s.product.code, s.location.code): s.reserved for s in Stock.objects.select_related("product", "location")
              .filter(product__code__in=["SUCO-6", "SUCO-7"])}
    assert set(before.values()) == {0}

    response = reserver.post("/api/v1/orders", {"location": "LOJA-B", "lines": [
        {"code": "SUCO-6", "quantity": 2}, {"code": "SUCO-7", "location": "LOJA-A", "quantity": 1}]}, format="json")

    assert response.status_code == 202, response.content
    assert response.json()["lines"] == [{"code": "SUCO-6", "location": "LOJA-B", "quantity": 2},
                                        {"code": "SUCO-7", "location": "LOJA-A", "quantity": 1}]
    held = {(s.product.code, s.location.code): s.reserved for s in Stock.objects.select_related("product", "location")
            .filter(product__code__in=["SUCO-6", "SUCO-7"], reserved__gt=0)}
    assert held == {("SUCO-6", "LOJA-B"): 2, ("SUCO-7", "LOJA-A"): 1}
    order = Order.objects.get(pk=response.json()["id"])
    assert sorted((line.product.code, line.location.code) for line in order.lines.all()) == [
        ("SUCO-6", "LOJA-B"), ("SUCO-7", "LOJA-A")]


@pytest.mark.django_db
def test_an_auto_order_takes_the_first_location_that_serves_it_whole(reserver):
    stores_stocking("SUCO-8", on_hand=1)

    response = reserver.post("/api/v1/orders", {"location": "auto", "locations": ["LOJA-B", "LOJA-A"],
                                                "lines": [{"code": "SUCO-8", "quantity": 1}]}, format="json")

    assert response.status_code == 202, response.content
    assert response.json()["lines"] == [{"code": "SUCO-8", "location": "LOJA-B", "quantity": 1}]


@pytest.mark.django_db
@pytest.mark.parametrize("body, unknown", [
    ({"lines": [{"code": "SUCO-9", "quantity": 1}], "preference": ["LOJA-B"]}, ["preference"]),
    ({"lines": [{"code": "SUCO-9", "quantity": 1, "loc": "LOJA-B"}]}, ["lines[0].loc"]),
])
def test_an_order_with_a_key_it_does_not_take_is_refused_naming_it(reserver, body, unknown):
    stores_stocking("SUCO-9")

    response = reserver.post("/api/v1/orders", body, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["details"]["unknown_fields"] == unknown
    assert Order.objects.count() == 0 and not Stock.objects.filter(reserved__gt=0).exists()


@pytest.mark.django_db
def test_a_location_beside_a_reservation_id_is_refused(reserver):
    stores_stocking("SUCO-10")
    reservation = reserver.post("/api/v1/reservations", {"location": "LOJA-A",
                                                         "lines": [{"code": "SUCO-10", "quantity": 1}]},
                                format="json").json()

    response = reserver.post("/api/v1/orders", {"reservation_id": reservation["id"], "location": "LOJA-B"},
                             format="json")

    assert response.status_code == 400 and response.json()["error"]["details"] == {"location": "LOJA-B"}
    assert Order.objects.count() == 0
