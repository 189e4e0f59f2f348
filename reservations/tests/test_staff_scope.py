"""Staff signed in with a session reserve, read, confirm and order only at the locations they are listed at."""
import pytest

from inventory.selectors import stock_at
from inventory.tests.factories import ProductFactory, staff_at, stock_at_location, stores_stocking
from orders.models import Order
from reservations import services
from reservations.models import Reservation, ReservationStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def stores():
    return stores_stocking("ARROZ")


@pytest.fixture
def limited(client, stores):
    """A session of staff listed at LOJA-A only."""
    client.force_login(staff_at(stores[0]))
    return client


def _reserved_at(code, location):
    return stock_at(product=ProductFactory._meta.model.objects.get(code=code), location=location).reserved


def test_limited_staff_reserve_at_their_location(limited, stores):
    answer = limited.post("/api/v1/reservations", {"location": "LOJA-A", "lines": [{"code": "ARROZ", "quantity": 2}]},
                          content_type="application/json")

    assert answer.status_code == 201, answer.content
    assert (_reserved_at("ARROZ", stores[0]), _reserved_at("ARROZ", stores[1])) == (2, 0)


def test_limited_staff_cannot_reserve_elsewhere_nor_at_the_default_location(limited, stores):
    for body in ({"location": "LOJA-B", "lines": [{"code": "ARROZ", "quantity": 1}]},
                 {"lines": [{"code": "ARROZ", "quantity": 1}]}):
        answer = limited.post("/api/v1/reservations", body, content_type="application/json")
        assert answer.status_code == 403, answer.content
        assert answer.json()["error"]["code"] == "location_forbidden"
    assert Reservation.objects.count() == 0
    assert _reserved_at("ARROZ", stores[1]) == 0


def test_an_auto_cart_of_limited_staff_only_tries_their_locations(limited, stores):
    beans = ProductFactory(code="FEIJAO")
    stock_at_location(beans, stores[0], on_hand=1)
    stock_at_location(beans, stores[1], on_hand=5)

    answer = limited.post("/api/v1/reservations", {"location": "auto", "lines": [{"code": "FEIJAO", "quantity": 3}]},
                          content_type="application/json")

    assert answer.status_code == 409, answer.content  # LOJA-B has 5 but is not theirs
    assert _reserved_at("FEIJAO", stores[1]) == 0


def test_limited_staff_neither_see_nor_release_a_reservation_at_another_location(limited, stores):
    elsewhere = services.reservation_create(client=None, location="LOJA-B", lines=[{"code": "ARROZ", "quantity": 2}])
    mine = services.reservation_create(client=None, location="LOJA-A", lines=[{"code": "ARROZ", "quantity": 1}])

    listed = limited.get("/api/v1/reservations").json()
    assert [r["id"] for r in listed["results"]] == [str(mine.pk)]
    assert limited.get(f"/api/v1/reservations/{elsewhere.pk}").status_code == 404
    for action in ("release", "confirm", "extend"):
        answer = limited.post(f"/api/v1/reservations/{elsewhere.pk}/{action}", {"ttl_seconds": 600},
                              content_type="application/json")
        assert answer.status_code == 404, (action, answer.content)

    elsewhere.refresh_from_db()
    assert elsewhere.status == ReservationStatus.ACTIVE
    assert _reserved_at("ARROZ", stores[1]) == 2
    released = limited.post(f"/api/v1/reservations/{mine.pk}/release")
    assert released.status_code == 200 and released.json()["status"] == "released"


def test_limited_staff_cannot_order_a_reservation_at_another_location(limited, stores):
    elsewhere = services.reservation_create(client=None, location="LOJA-B", lines=[{"code": "ARROZ", "quantity": 1}])

    answer = limited.post("/api/v1/orders", {"reservation_id": str(elsewhere.pk)}, content_type="application/json")
    refused_lines = limited.post("/api/v1/orders", {"lines": [{"code": "ARROZ", "quantity": 1}]},
                                 content_type="application/json")

    assert answer.status_code == 404, answer.content
    assert refused_lines.status_code == 403 and refused_lines.json()["error"]["code"] == "location_forbidden"
    assert Order.objects.count() == 0


def test_staff_listed_nowhere_act_anywhere_as_before(client, stores):
    from django.contrib.auth import get_user_model
    client.force_login(get_user_model().objects.create_user(username="geral", password="x", is_staff=True))

    answer = client.post("/api/v1/reservations", {"location": "LOJA-B", "lines": [{"code": "ARROZ", "quantity": 1}]},
                         content_type="application/json")

    assert answer.status_code == 201, answer.content
    assert _reserved_at("ARROZ", stores[1]) == 1
