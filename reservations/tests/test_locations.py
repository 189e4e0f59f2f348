"""Tests for reservations at locations: named, default, "auto" with its rule, splitting, and client limits."""
import pytest

from core.errors import InsufficientStock, LocationForbidden, ValidationFailed
from core.tests.factories import ApiClientFactory
from inventory.selectors import location_default, stock_at
from inventory.tests.factories import LocationFactory, ProductFactory, stock_at_location
from reservations import services
from reservations.models import ReservationLine

pytestmark = pytest.mark.django_db


@pytest.fixture
def places():
    return LocationFactory(code="LOJA-A", name="Loja A"), LocationFactory(code="LOJA-B", name="Loja B")


def _reserved(product, location):
    return stock_at(product=product, location=location).reserved


def test_a_cart_without_location_reserves_at_the_default_one_as_before(places):
    product = ProductFactory(on_hand=10)
    stock_at_location(product, places[0], on_hand=10)

    reservation = services.reservation_create(client=None, lines=[{"code": product.code, "quantity": 2}])

    line = reservation.lines.all()[0]
    assert line.location == location_default()
    assert (_reserved(product, location_default()), _reserved(product, places[0])) == (2, 0)


def test_a_named_location_and_a_line_location_each_reserve_there(places):
    rice, beans = ProductFactory(on_hand=1), ProductFactory(on_hand=1)
    stock_at_location(rice, places[0], on_hand=5)
    stock_at_location(beans, places[1], on_hand=5)

    reservation = services.reservation_create(client=None, location="loja-a", lines=[
        {"code": rice.code, "quantity": 3}, {"code": beans.code, "quantity": 4, "location": "LOJA-B"}])

    assert sorted((line.product_id, line.location.code, line.quantity) for line in reservation.lines.all()) == sorted(
        [(rice.pk, "LOJA-A", 3), (beans.pk, "LOJA-B", 4)])
    assert (_reserved(rice, places[0]), _reserved(beans, places[1]), _reserved(rice, location_default())) == (3, 4, 0)


def test_a_short_line_at_a_named_location_says_where(places):
    product = ProductFactory(on_hand=50)
    stock_at_location(product, places[0], on_hand=2)

    with pytest.raises(InsufficientStock) as short:
        services.reservation_create(client=None, location="LOJA-A", lines=[{"code": product.code, "quantity": 3}])

    assert short.value.details["lines"] == [{"code": product.code, "requested": 3, "available": 2,
                                             "location": "LOJA-A"}]
    assert _reserved(product, places[0]) == 0


def test_auto_takes_the_first_location_in_the_list_that_serves_the_whole_cart(places):
    rice, beans = ProductFactory(on_hand=0), ProductFactory(on_hand=0)
    stock_at_location(rice, places[0], on_hand=5)   # A has rice only
    stock_at_location(rice, places[1], on_hand=5)   # B has both
    stock_at_location(beans, places[1], on_hand=5)

    reservation = services.reservation_create(client=None, location="auto", locations=["LOJA-A", "LOJA-B"], lines=[
        {"code": rice.code, "quantity": 2}, {"code": beans.code, "quantity": 2}])

    assert {line.location.code for line in reservation.lines.all()} == {"LOJA-B"}
    assert (_reserved(rice, places[0]), _reserved(rice, places[1]), _reserved(beans, places[1])) == (0, 2, 2)


def test_auto_without_a_list_tries_the_default_location_first():
    product = ProductFactory(on_hand=5)
    other = LocationFactory(code="AAA-FIRST-BY-CODE")
    stock_at_location(product, other, on_hand=5)

    reservation = services.reservation_create(client=None, location="AUTO", lines=[{"code": product.code,
                                                                                    "quantity": 1}])

    assert reservation.lines.all()[0].location == location_default()


def test_auto_never_splits_unless_asked_and_names_the_closest_location(places):
    product = ProductFactory(on_hand=0)
    stock_at_location(product, places[0], on_hand=3)
    stock_at_location(product, places[1], on_hand=4)

    with pytest.raises(InsufficientStock) as short:
        services.reservation_create(client=None, location="auto", locations=["LOJA-A", "LOJA-B"],
                                    lines=[{"code": product.code, "quantity": 6}])
    assert short.value.details["lines"] == [{"code": product.code, "requested": 6, "available": 4,
                                             "location": "LOJA-B"}]
    assert ReservationLine.objects.count() == 0

    split = services.reservation_create(client=None, location="auto", locations=["LOJA-A", "LOJA-B"],
                                        allow_split=True, lines=[{"code": product.code, "quantity": 6}])

    assert sorted((line.location.code, line.quantity) for line in split.lines.all()) == [("LOJA-A", 3), ("LOJA-B", 3)]
    assert (_reserved(product, places[0]), _reserved(product, places[1])) == (3, 3)


def test_releasing_and_confirming_act_at_each_line_location(places):
    product = ProductFactory(on_hand=0)
    stock_at_location(product, places[0], on_hand=3)
    stock_at_location(product, places[1], on_hand=4)
    split = services.reservation_create(client=None, location="auto", locations=["LOJA-A", "LOJA-B"],
                                        allow_split=True, lines=[{"code": product.code, "quantity": 5}])

    services.reservation_confirm(reservation_id=split.pk, client=None)

    a, b = stock_at(product=product, location=places[0]), stock_at(product=product, location=places[1])
    assert (a.on_hand, a.reserved, b.on_hand, b.reserved) == (0, 0, 2, 0)


def test_a_client_limited_to_some_locations_gets_403_elsewhere_and_auto_stays_within_them(places):
    product = ProductFactory(on_hand=10)
    stock_at_location(product, places[1], on_hand=10)
    client = ApiClientFactory(scopes=["reserve"], location_codes=["LOJA-B"])

    with pytest.raises(LocationForbidden):
        services.reservation_create(client=client, lines=[{"code": product.code, "quantity": 1}])
    with pytest.raises(LocationForbidden):
        services.reservation_create(client=client, location="auto", locations=["LOJA-A", "LOJA-B"],
                                    lines=[{"code": product.code, "quantity": 1}])
    reservation = services.reservation_create(client=client, location="auto",
                                              lines=[{"code": product.code, "quantity": 1}])

    assert reservation.lines.all()[0].location.code == "LOJA-B"
    assert _reserved(product, location_default()) == 0


def test_bad_location_inputs_are_refused_before_anything_is_written(places):
    product = ProductFactory(on_hand=10)
    for kwargs in ({"location": 7}, {"location": "NOWHERE"}, {"location": "auto", "locations": "LOJA-A"},
                   {"location": "auto", "allow_split": "yes"}):
        with pytest.raises(ValidationFailed):
            services.reservation_create(client=None, lines=[{"code": product.code, "quantity": 1}], **kwargs)
    with pytest.raises(ValidationFailed):
        services.reservation_create(client=None, lines=[{"code": product.code, "quantity": 1, "location": "auto"}])
    assert ReservationLine.objects.count() == 0


@pytest.mark.parametrize("kwargs", [{"locations": ["LOJA-B"]}, {"allow_split": True},
                                    {"location": "LOJA-A", "locations": ["LOJA-B"]}])
def test_a_preference_list_or_split_without_auto_is_refused_not_ignored(places, kwargs):
    product = ProductFactory(on_hand=10)
    stock_at_location(product, places[1], on_hand=10)

    with pytest.raises(ValidationFailed) as refused:
        services.reservation_create(client=None, lines=[{"code": product.code, "quantity": 1}], **kwargs)

    assert "auto" in refused.value.message
    assert ReservationLine.objects.count() == 0
    assert _reserved(product, location_default()) == _reserved(product, places[1]) == 0
