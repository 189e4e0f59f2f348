"""Orders API: 202 on accept, idempotent replays, the owner's view of status and steps, clear 4xx answers."""
import pytest

from inventory.tests.factories import ProductFactory
from orders.models import Order


@pytest.mark.django_db
def test_post_answers_202_with_the_received_order(reserver):
    ProductFactory(code="SUCO-1", on_hand=5)

    response = reserver.post("/api/v1/orders", {"lines": [{"code": "suco-1", "quantity": 2}]}, format="json")

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "received" and body["lines"] == [{"code": "SUCO-1", "quantity": 2}]
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
