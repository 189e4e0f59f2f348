"""Tests for the admin's location screens: locations, stock per location on a product's page, transfers."""
import pytest

from inventory import services
from inventory.models import Location, TransferStatus
from inventory.selectors import location_default, location_default_id, stock_at
from inventory.tests.factories import LocationFactory, ProductFactory

pytestmark = pytest.mark.django_db


def test_staff_create_a_location_through_the_service_and_cannot_delete_the_default(client, staff_user):
    client.force_login(staff_user)
    assert not Location.objects.filter(code="DARK-NORTE").exists()

    response = client.post("/admin/inventory/location/add/", {
        "code": "dark-norte", "name": "Dark store Norte", "kind": "dark_store", "address": "",
        "time_zone": "America/Sao_Paulo", "active": "on"})

    assert response.status_code == 302
    assert Location.objects.get(code="DARK-NORTE").kind == "dark_store"
    assert client.get(f"/admin/inventory/location/{location_default_id()}/delete/").status_code == 403


def test_a_product_page_shows_its_stock_at_every_location(client, staff_user):
    product = ProductFactory(on_hand=9)
    LocationFactory(code="LOJA-B")
    services.transfer_create(code=product.code, source="", destination="LOJA-B", quantity=4)
    client.force_login(staff_user)

    page = client.get(f"/admin/inventory/product/{product.pk}/change/").content.decode()

    assert "LOJA-B" in page and location_default().code in page


def test_staff_receive_a_transfer_in_transit_from_the_list(client, staff_user):
    product = ProductFactory(on_hand=9)
    store = LocationFactory(code="LOJA-B")
    transfer = services.transfer_create(code=product.code, source="", destination="LOJA-B", quantity=4,
                                        in_transit=True)
    client.force_login(staff_user)
    assert stock_at(product=product, location=store).on_hand == 0

    response = client.post("/admin/inventory/transfer/", {"action": "receive_action", "_selected_action": [transfer.pk]})

    assert response.status_code == 302
    transfer.refresh_from_db()
    assert transfer.status == TransferStatus.RECEIVED
    assert stock_at(product=product, location=store).on_hand == 4
