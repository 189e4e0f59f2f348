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


def test_a_drivers_locations_are_picked_in_the_form_and_filter_the_list(client, staff_user):
    from inventory.tests.factories import LocationFactory

    store_b = LocationFactory(code="LOJA-B", name="Loja Bairro")
    driver, other = DriverFactory(name="Davi"), DriverFactory(name="Elisa")
    client.force_login(staff_user)

    form = client.get(f"/admin/notifications/driver/{driver.pk}/change/").content.decode()
    response = client.post(f"/admin/notifications/driver/{driver.pk}/change/", {
        "name": "Davi", "role": "driver", "language": "pt-br", "subscription": "all", "active": "on",
        "locations": [store_b.pk],
    })
    listing = client.get(f"/admin/notifications/driver/?locations__id__exact={store_b.pk}").content.decode()

    assert 'name="locations"' in form and "selectfilter" in form.lower()
    assert response.status_code == 302
    assert list(driver.locations.values_list("code", flat=True)) == ["LOJA-B"]
    assert "Davi" in listing and "Elisa" not in listing and '<td class="field-location_codes">LOJA-B</td>' in listing
    assert not other.locations.exists()


def test_alert_states_and_the_outbox_filter_by_location(client, staff_user):
    from inventory.tests.factories import LocationFactory, stock_at_location

    store_b = LocationFactory(code="LOJA-B", name="Loja Bairro")
    at_default, at_b = ProductFactory(on_hand=6, code="ADM-DEF"), ProductFactory(on_hand=40, code="ADM-B")
    stock_at_location(at_b, store_b, on_hand=6)
    DriverFactory().locations.set([store_b])
    DriverFactory()
    inventory.stock_adjust(code=at_default.code, delta=-3, reason="test")
    inventory.stock_adjust(code=at_b.code, delta=-3, reason="test", location="LOJA-B")
    client.force_login(staff_user)

    states = client.get(f"/admin/notifications/alertstate/?location__id__exact={store_b.pk}").content.decode()
    outbox = client.get(f"/admin/notifications/alertoutbox/?location__id__exact={store_b.pk}").content.decode()

    assert "ADM-B" in states and "ADM-DEF" not in states and "Loja Bairro" in states
    assert "ADM-B" in outbox and "ADM-DEF" not in outbox
