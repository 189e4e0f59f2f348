"""Tests for the reservations admin: the list with its filters, and the release action."""
import pytest
from django.urls import reverse

from inventory.models import Stock
from inventory.tests.factories import ProductFactory
from reservations.models import Reservation, ReservationStatus
from reservations.tests.factories import reservation_make

pytestmark = pytest.mark.django_db


def test_staff_lists_reservations_filtered_by_status(client, staff_user):
    product = ProductFactory(code="ADM-1", on_hand=5)
    kept = reservation_make(lines=[{"code": "ADM-1", "quantity": 1}])
    client.force_login(staff_user)

    page = client.get(reverse("admin:reservations_reservation_changelist"), {"status__exact": "active"})
    detail = client.get(reverse("admin:reservations_reservation_change", args=[kept.pk]))

    assert page.status_code == 200 and str(kept.pk) in page.content.decode()
    assert detail.status_code == 200 and product.code in detail.content.decode()


def test_release_action_returns_units(client, staff_user):
    ProductFactory(code="ADM-2", on_hand=5)
    reservation = reservation_make(lines=[{"code": "ADM-2", "quantity": 2}])
    assert Stock.objects.get(product__code="ADM-2").reserved == 2
    client.force_login(staff_user)

    response = client.post(reverse("admin:reservations_reservation_changelist"),
                           {"action": "release_selected", "_selected_action": [str(reservation.pk)]})

    assert response.status_code == 302
    assert Reservation.objects.get(pk=reservation.pk).status == ReservationStatus.RELEASED
    assert Stock.objects.get(product__code="ADM-2").reserved == 0
