"""Tests of the dashboard's server side by location: the locations the page shows, and the feed's last events there."""
import json

import pytest

from inventory.services import stock_receive
from inventory.tests.factories import LocationFactory, ProductFactory, stock_at_location
from inventory.tests.test_views import assert_error_shape
from reservations.tests.factories import reservation_make

pytestmark = pytest.mark.django_db

URL = "/dashboard/events"


@pytest.fixture
def dark():
    return LocationFactory(code="DARK-ZS", name="Dark store Zona Sul")


@pytest.fixture
def manager_zs(django_user_model, dark):
    user = django_user_model.objects.create_user(username="gerente-zs", password="x-pass-123", is_staff=True)
    dark.staff_users.add(user)
    return user


def _page_config(client, path="/dashboard/"):
    response = client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    marker = 'id="dashboard-config" type="application/json">'
    start = html.index(marker) + len(marker)
    return json.loads(html[start:html.index("</script>", start)]), html


def test_page_without_locations_shows_the_default_one_and_offers_every_location(client, staff_user, dark):
    client.force_login(staff_user)

    config, html = _page_config(client)

    assert config["selected"] == ["PRINCIPAL"] and config["defaultLocation"] == "PRINCIPAL"
    assert [place["code"] for place in config["locations"]] == ["PRINCIPAL", "DARK-ZS"]
    assert 'value="DARK-ZS">' in html and 'value="PRINCIPAL" checked>' in html
    assert '<table id="stock-table">' in html  # one location: no location column


def test_page_shows_the_locations_asked_in_the_url_with_the_location_column(client, staff_user, dark):
    client.force_login(staff_user)

    config, html = _page_config(client, "/dashboard/?locations=dark-zs,PRINCIPAL")
    every, _ = _page_config(client, "/dashboard/?locations=all")

    assert config["selected"] == ["DARK-ZS", "PRINCIPAL"] and every["selected"] == ["PRINCIPAL", "DARK-ZS"]
    assert '<table id="stock-table" class="multi">' in html


def test_page_of_a_single_location_install_has_no_picker(client, staff_user):
    client.force_login(staff_user)

    config, html = _page_config(client)

    assert config["selected"] == ["PRINCIPAL"] and 'id="locations"' not in html


def test_limited_staff_see_only_their_locations_and_unknown_or_foreign_ones_are_named(client, manager_zs):
    LocationFactory(code="DARK-ZN")
    client.force_login(manager_zs)

    config, _ = _page_config(client)
    asked, html = _page_config(client, "/dashboard/?locations=DARK-ZN,NOWHERE")

    assert [place["code"] for place in config["locations"]] == ["DARK-ZS"]
    assert config["selected"] == ["DARK-ZS"]  # the default location is not theirs
    assert asked["selected"] == ["DARK-ZS"]
    assert "DARK-ZN, NOWHERE" in html and 'role="alert"' in html


def test_events_at_a_location_hold_its_movements_and_the_reservation_lines_there(client, staff_user, dark):
    product = ProductFactory(code="FEED-1", on_hand=10)
    stock_at_location(product, dark, on_hand=5)
    stock_receive(code="FEED-1", quantity=2, location="DARK-ZS")
    reservation_make(lines=[{"code": "FEED-1", "quantity": 1, "location": "DARK-ZS"},
                            {"code": "FEED-1", "quantity": 1}])
    client.force_login(staff_user)

    at_dark = client.get(URL, {"locations": "DARK-ZS"}).json()["items"]
    everywhere = client.get(URL).json()["items"]

    assert [(e["type"], e.get("location"), e.get("quantity")) for e in at_dark if e["type"].startswith("movement")] == [
        ("movement.receipt", "DARK-ZS", 2), ("movement.receipt", "DARK-ZS", 5)]
    reservation, = [e for e in at_dark if e["type"] == "reservation.created"]
    assert reservation["lines"] == [{"code": "FEED-1", "location": "DARK-ZS", "quantity": 1}]
    assert {e.get("location") for e in everywhere if e["type"].startswith("movement")} == {"PRINCIPAL", "DARK-ZS"}


def test_events_of_limited_staff_stay_within_their_locations(client, manager_zs):
    product = ProductFactory(code="FEED-2", on_hand=10)
    stock_at_location(product, manager_zs.stock_locations.get(), on_hand=5)
    client.force_login(manager_zs)

    items = client.get(URL).json()["items"]
    refused = client.get(URL, {"locations": "PRINCIPAL"})

    assert [(e["type"], e["location"]) for e in items] == [("movement.receipt", "DARK-ZS")]
    assert_error_shape(refused, 403, "location_forbidden")


def test_events_of_an_unknown_location_are_400(client, staff_user):
    client.force_login(staff_user)
    assert_error_shape(client.get(URL, {"locations": "NOWHERE"}), 400, "unknown_location")


def test_events_of_limited_staff_keep_their_reservations_behind_newer_ones_elsewhere(client, manager_zs, dark):
    product = ProductFactory(code="FEED-3", on_hand=10)
    stock_at_location(product, dark, on_hand=5)
    theirs = reservation_make(lines=[{"code": "FEED-3", "quantity": 1, "location": "DARK-ZS"}])
    for _ in range(3):
        reservation_make(lines=[{"code": "FEED-3", "quantity": 1}])
    client.force_login(manager_zs)

    items = client.get(URL, {"limit": 2}).json()["items"]

    assert [(e["type"], e.get("reservation_id")) for e in items] == [
        ("reservation.created", str(theirs.pk)), ("movement.receipt", None)]
