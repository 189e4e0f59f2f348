"""The reservations admin for staff limited to locations: carts with a line at theirs, released only when
every line is theirs."""
import pytest
from django.urls import reverse

from inventory.models import Product
from inventory.selectors import stock_at
from inventory.tests.factories import staff_at, stores_stocking
from reservations.models import Reservation, ReservationStatus
from reservations.tests.factories import reservation_make

pytestmark = pytest.mark.django_db

LIST = "admin:reservations_reservation_changelist"


@pytest.fixture
def stores():
    return stores_stocking("RSV-A", "RSV-B")


def _cart(*places: str):
    return reservation_make(lines=[{"code": f"RSV-{place[-1]}", "quantity": 1, "location": place} for place in places])


def test_limited_staff_see_carts_with_a_line_at_their_locations(client, stores):
    theirs, shared, others = _cart("LOJA-A"), _cart("LOJA-A", "LOJA-B"), _cart("LOJA-B")
    client.force_login(staff_at(stores[0]))

    page = client.get(reverse(LIST))
    opened = client.get(reverse("admin:reservations_reservation_change", args=[others.pk]))

    assert {r.pk for r in page.context["cl"].result_list} == {theirs.pk, shared.pk}
    assert opened.status_code == 302 and opened["Location"] == reverse("admin:index")


def test_releasing_a_cart_with_a_line_elsewhere_is_refused(client, stores):
    theirs, shared = _cart("LOJA-A"), _cart("LOJA-A", "LOJA-B")
    client.force_login(staff_at(stores[0]))

    response = client.post(reverse(LIST), {"action": "release_selected",
                                           "_selected_action": [str(theirs.pk), str(shared.pk)]}, follow=True)

    assert any(str(shared.pk) in str(m) for m in response.context["messages"])
    assert Reservation.objects.get(pk=theirs.pk).status == ReservationStatus.RELEASED
    assert Reservation.objects.get(pk=shared.pk).status == ReservationStatus.ACTIVE
    assert stock_at(product=Product.objects.get(code="RSV-B"), location=stores[1]).reserved == 1


def test_the_list_filters_by_location(client, staff_user, stores):
    _cart("LOJA-A")
    at_b = _cart("LOJA-B")
    client.force_login(staff_user)

    page = client.get(reverse(LIST), {"location": "LOJA-B"})

    assert [r.pk for r in page.context["cl"].result_list] == [at_b.pk]


def test_a_superuser_sees_every_cart(client, staff_user, stores):
    carts = {_cart("LOJA-A").pk, _cart("LOJA-B").pk}
    client.force_login(staff_user)
    assert {r.pk for r in client.get(reverse(LIST)).context["cl"].result_list} == carts
