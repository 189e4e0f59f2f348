"""Tests for the notifications admin: the one-time link on driver creation, the recipient's role, the outbox and its
resend action."""
import pytest

from inventory import services as inventory
from inventory.tests.factories import ProductFactory
from notifications import services
from notifications.models import AlertOutbox, Driver, OutboxState, Role
from notifications.tests.factories import BuyerFactory, DriverFactory, open_suggestion

pytestmark = pytest.mark.django_db


def test_creating_a_driver_shows_a_one_time_link(client, staff_user):
    client.force_login(staff_user)

    response = client.post("/admin/notifications/driver/add/", {
        "name": "Bruno", "role": "driver", "language": "pt-br", "subscription": "all", "active": "on",
    }, follow=True)

    assert response.status_code == 200
    driver = Driver.objects.get(name="Bruno")
    assert driver.link_token_hash and driver.chat_id is None
    assert "https://t.me/" in response.content.decode()


def test_a_drivers_categories_are_picked_from_the_catalogue(client, staff_user):
    ProductFactory(category="bebidas")
    ProductFactory(category="mercearia")
    client.force_login(staff_user)

    form = client.get("/admin/notifications/driver/add/").content.decode()
    response = client.post("/admin/notifications/driver/add/", {
        "name": "Carla", "role": "driver", "language": "pt-br", "subscription": "categories", "categories": ["bebidas"], "active": "on",
    })

    assert '<option value="bebidas">' in form and '<option value="mercearia">' in form
    assert 'name="products"' in form and "admin-autocomplete" in form  # products by search, not by raw id
    assert response.status_code == 302
    assert Driver.objects.get(name="Carla").categories == ["bebidas"]


def test_outbox_lists_alerts_and_resend_makes_them_pending(client, staff_user):
    product = ProductFactory(on_hand=6)
    DriverFactory()
    inventory.stock_adjust(code=product.code, delta=-3, reason="test")
    row = AlertOutbox.objects.get()
    AlertOutbox.objects.update(state=OutboxState.DEAD, attempts=4)
    client.force_login(staff_user)

    listing = client.get("/admin/notifications/alertoutbox/?state__exact=dead")
    response = client.post("/admin/notifications/alertoutbox/", {"action": "resend", "_selected_action": [row.pk]})

    assert listing.status_code == 200 and product.code in listing.content.decode()
    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.state, row.attempts) == (OutboxState.PENDING, 0)


def test_the_role_is_shown_filterable_and_editable(client, staff_user):
    driver = DriverFactory(name="Davi")
    buyer = BuyerFactory(name="Beatriz")
    client.force_login(staff_user)

    listing = client.get("/admin/notifications/driver/").content.decode()
    buyers = client.get("/admin/notifications/driver/?role__exact=buyer").content.decode()
    response = client.post(f"/admin/notifications/driver/{driver.pk}/change/", {
        "name": "Davi", "role": "both", "language": "pt-br", "subscription": "all", "active": "on",
    })

    assert ">Papel</a>" in listing
    assert '<td class="field-role">comprador</td>' in listing and '<td class="field-role">entregador</td>' in listing
    assert "Beatriz" in buyers and "Davi" not in buyers
    assert response.status_code == 302
    driver.refresh_from_db()
    buyer.refresh_from_db()
    assert (driver.role, buyer.role) == (Role.BOTH, Role.BUYER)


def test_a_days_digest_is_listed_in_the_outbox(client, staff_user):
    from datetime import date

    open_suggestion(code="ADM-1")
    buyer = BuyerFactory(name="Beatriz")
    services.reorder_digest_write(day=date(2026, 3, 10))
    client.force_login(staff_user)

    listing = client.get("/admin/notifications/alertoutbox/?kind__exact=reorder_digest").content.decode()
    detail = client.get(f"/admin/notifications/alertoutbox/{AlertOutbox.objects.get(driver=buyer).pk}/change/")

    assert "Beatriz" in listing and '<td class="field-kind">resumo de compras</td>' in listing
    assert '<td class="field-digest_date nowrap">10 de Março de 2026</td>' in listing
    assert detail.status_code == 200 and "ADM-1" in detail.content.decode()
