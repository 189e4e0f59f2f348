"""Tests for the dashboard's server side: the feed's last events (who may read them, their shape and order)."""
import pytest

from inventory.services import stock_receive
from inventory.tests.factories import ProductFactory
from inventory.tests.test_views import assert_error_shape
from reservations.services import reservation_confirm, reservation_release
from reservations.tests.factories import reservation_make

pytestmark = pytest.mark.django_db

URL = "/dashboard/events"


def _history():
    """Receipt of 10 (factory), receipt of 5, reservation A created then released, B created then confirmed."""
    ProductFactory(code="CAFE-500", name="Café 500 g", on_hand=10)
    stock_receive(code="CAFE-500", quantity=5)
    first = reservation_make(lines=[{"code": "CAFE-500", "quantity": 2}])
    reservation_release(reservation_id=first.pk, client=None)
    second = reservation_make(lines=[{"code": "CAFE-500", "quantity": 3}])
    reservation_confirm(reservation_id=second.pk, client=None)
    return first, second


def test_events_need_a_staff_session(client, django_user_model, reader):
    clerk = django_user_model.objects.create_user(username="clerk", password="x-pass-123")

    anonymous = client.get(URL)
    client.force_login(clerk)
    not_staff = client.get(URL)

    assert_error_shape(anonymous, 403)
    assert_error_shape(not_staff, 403)
    assert_error_shape(reader.get(URL), 403)  # an API token is not a staff session


def test_events_are_the_last_movements_and_reservation_events_newest_first(client, staff_user):
    first, second = _history()
    client.force_login(staff_user)

    items = client.get(URL).json()["items"]

    assert [(e["type"], e.get("reservation_id"), e.get("quantity")) for e in items] == [
        ("movement.sale", None, -3),  # written after the confirmation, in its transaction
        ("reservation.confirmed", str(second.pk), None),
        ("reservation.created", str(second.pk), None),
        ("reservation.released", str(first.pk), None),
        ("reservation.created", str(first.pk), None),
        ("movement.receipt", None, 5),
        ("movement.receipt", None, 10),
    ]
    assert items[0] == {"type": "movement.sale", "code": "CAFE-500", "location": "PRINCIPAL", "name": "Café 500 g",
                        "quantity": -3, "on_hand": 12, "at": items[0]["at"]}
    assert items[1]["lines"] == [{"code": "CAFE-500", "location": "PRINCIPAL", "quantity": 3}]
    assert [e["at"] for e in items] == sorted((e["at"] for e in items), reverse=True)


def test_events_limit_keeps_the_newest(client, staff_user):
    _history()
    client.force_login(staff_user)

    items = client.get(URL, {"limit": 2}).json()["items"]

    assert [e["type"] for e in items] == ["movement.sale", "reservation.confirmed"]


@pytest.mark.parametrize("limit", ["0", "101", "many"])
def test_events_reject_a_limit_out_of_range(client, staff_user, limit):
    client.force_login(staff_user)
    assert_error_shape(client.get(URL, {"limit": limit}), 400, "invalid")


def test_the_page_names_the_new_columns_and_feed_lines_in_portuguese(client, staff_user):
    client.force_login(staff_user)

    page = client.get("/dashboard/", HTTP_ACCEPT_LANGUAGE="pt-br").content.decode()

    assert "Dia da ruptura" in page and "Mínimo em 7 dias" in page
    assert "Buscar código, código de barras ou nome" in page
    assert '"movement.receipt": "Entrada"' in page and '"eventsUrl": "/dashboard/events?limit=50"' in page


def test_events_are_not_part_of_the_client_api_schema():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)

    assert not [path for path in schema["paths"] if path.startswith("/dashboard")]
