"""Tests for alerts per location: states and outbox rows per (product, location), recipients belonging to locations
(none: the default one), messages naming their location, projected stockouts at a location."""
import pytest
from django.utils import timezone

from inventory import services as inventory
from inventory.selectors import location_default, location_default_id
from inventory.tests.factories import LocationFactory, ProductFactory, stock_at_location
from notifications import selectors, services
from notifications.models import AlertKind, AlertOutbox, AlertState, Level, MessageLevel, OutboxState
from notifications.tests.factories import DriverFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def store_b():
    return LocationFactory(code="LOJA-B", name="Loja Bairro")


def adjust(product, delta, location=None):
    return inventory.stock_adjust(code=product.code, delta=delta, reason="test", location=location)


def driver_at(*locations, **fields):
    driver = DriverFactory(**fields)
    driver.locations.set(locations)
    return driver


def test_an_alert_at_store_b_reaches_only_the_drivers_of_store_b(store_b):
    product = ProductFactory(on_hand=20)
    stock_at_location(product, store_b, on_hand=6)
    of_b, of_default, of_nowhere = driver_at(store_b), driver_at(location_default()), DriverFactory()
    assert AlertOutbox.objects.count() == 0

    adjust(product, -3, location="LOJA-B")

    row = AlertOutbox.objects.get()
    assert (row.driver_id, row.location_id, row.level, row.available) == (of_b.pk, store_b.pk, MessageLevel.LOW, 3)
    assert not AlertOutbox.objects.filter(driver__in=[of_default, of_nowhere]).exists()
    assert AlertState.objects.get(product=product, location=store_b).level == Level.LOW
    assert not AlertState.objects.filter(product=product, location_id=location_default_id()).exists()


def test_a_driver_with_no_location_keeps_getting_the_default_locations_alerts(store_b):
    product = ProductFactory(on_hand=6)
    stock_at_location(product, store_b, on_hand=6)
    driver = DriverFactory()
    assert not driver.locations.exists()

    adjust(product, -3)
    adjust(product, -3, location="LOJA-B")

    row = AlertOutbox.objects.get()
    assert (row.driver_id, row.location_id, row.level) == (driver.pk, location_default_id(), MessageLevel.LOW)


def test_a_driver_of_two_locations_gets_one_alert_per_location(store_b):
    product = ProductFactory(on_hand=6)
    stock_at_location(product, store_b, on_hand=6)
    default = location_default()
    driver = driver_at(default, store_b)

    adjust(product, -3)
    adjust(product, -3, location="LOJA-B")
    adjust(product, -1, location="LOJA-B")  # still low at B: no new alert

    rows = AlertOutbox.objects.filter(driver=driver)
    assert sorted((r.location_id, r.episode, r.level) for r in rows) == sorted(
        [(default.pk, 1, MessageLevel.LOW), (store_b.pk, 1, MessageLevel.LOW)])


def test_hysteresis_runs_per_location_independently(store_b, settings):
    settings.ALERT_HYSTERESIS_MARGIN = 2
    product = ProductFactory(on_hand=10, low_stock_threshold=5)
    stock_at_location(product, store_b, on_hand=10)

    adjust(product, -6, location="LOJA-B")  # B: 4, low
    adjust(product, +2, location="LOJA-B")  # B: 6, above the threshold but within the margin: still low
    adjust(product, -4)  # default: 6, never left OK

    assert AlertState.objects.get(product=product, location=store_b).level == Level.LOW
    assert not AlertState.objects.filter(product=product, location_id=location_default_id()).exists()

    adjust(product, +1, location="LOJA-B")  # B: 7 = threshold + margin: OK again
    adjust(product, -3)  # default: 3, low: its own first episode

    b_state = AlertState.objects.get(product=product, location=store_b)
    default_state = AlertState.objects.get(product=product, location_id=location_default_id())
    assert (b_state.level, b_state.episode) == (Level.OK, 1)
    assert (default_state.level, default_state.episode) == (Level.LOW, 1)


def test_back_in_stock_at_one_location_edits_only_that_locations_alert(store_b):
    product = ProductFactory(on_hand=3)
    stock_at_location(product, store_b, on_hand=3)
    default = location_default()
    driver = driver_at(default, store_b)
    adjust(product, -1)
    adjust(product, -1, location="LOJA-B")
    AlertOutbox.objects.update(state=OutboxState.SENT, delivered_revision=1)

    adjust(product, +20, location="LOJA-B")

    levels = dict(AlertOutbox.objects.filter(driver=driver).values_list("location_id", "level"))
    assert levels == {default.pk: MessageLevel.LOW, store_b.pk: MessageLevel.RESOLVED}
    assert AlertOutbox.objects.get(location=store_b).state == OutboxState.PENDING
    assert AlertOutbox.objects.get(location=default).state == OutboxState.SENT


def test_the_alert_names_its_location_when_several_are_active(store_b, fake_telegram):
    product = ProductFactory(on_hand=20, name="Leite integral")
    stock_at_location(product, store_b, on_hand=6)
    driver = driver_at(store_b)
    adjust(product, -3, location="LOJA-B")

    services.alert_deliver(driver_id=driver.pk)

    [call] = fake_telegram.calls_to("sendMessage")
    assert "Leite integral" in call.payload["text"] and "📍 Loja Bairro" in call.payload["text"]


def test_the_alert_names_no_location_when_only_one_is_active(store_b, fake_telegram):
    store_b.active = False
    store_b.save()
    product = ProductFactory(on_hand=6, name="Leite integral")
    driver = DriverFactory()
    adjust(product, -3)

    services.alert_deliver(driver_id=driver.pk)

    [call] = fake_telegram.calls_to("sendMessage")
    assert "Leite integral" in call.payload["text"] and "📍" not in call.payload["text"]


def test_a_digest_of_two_locations_names_each_line_location(store_b, fake_telegram):
    milk, rice = ProductFactory(on_hand=6, name="Leite"), ProductFactory(on_hand=20, name="Arroz")
    stock_at_location(rice, store_b, on_hand=6)
    default = location_default()
    driver = driver_at(default, store_b)
    adjust(milk, -3)
    adjust(rice, -3, location="LOJA-B")

    services.alert_deliver(driver_id=driver.pk)

    [call] = fake_telegram.calls_to("sendMessage")
    lines = call.payload["text"].split("\n")
    assert any("Leite" in line and f"📍 {default.name}" in line for line in lines)
    assert any("Arroz" in line and "📍 Loja Bairro" in line for line in lines)


def test_a_projected_stockout_at_a_location_goes_to_that_locations_drivers(store_b):
    product = ProductFactory(on_hand=20)
    stock_at_location(product, store_b, on_hand=20)
    of_b, of_default = driver_at(store_b), DriverFactory()
    day = timezone.localdate() + timezone.timedelta(days=3)

    assert services.alert_projected_stockout(product_id=product.pk, stockout_date=day, location_id=store_b.pk)

    row = AlertOutbox.objects.get()
    assert (row.driver_id, row.location_id, row.kind, row.stockout_date) == (of_b.pk, store_b.pk,
                                                                             AlertKind.PROJECTED, day)
    state = AlertState.objects.get(product=product, location=store_b)
    assert (state.projected_stockout, state.projected_episode) == (day, 1)
    assert not AlertOutbox.objects.filter(driver=of_default).exists()


def test_a_projected_stockout_without_a_location_is_the_default_locations(store_b):
    product = ProductFactory(on_hand=20)
    of_b, of_default = driver_at(store_b), DriverFactory()
    day = timezone.localdate() + timezone.timedelta(days=3)

    services.alert_projected_stockout(product_id=product.pk, stockout_date=day)
    services.alert_projected_stockout(product_id=product.pk, stockout_date=None)

    row = AlertOutbox.objects.get()
    assert (row.driver_id, row.location_id, row.level) == (of_default.pk, location_default_id(),
                                                           MessageLevel.RESOLVED)
    assert not AlertOutbox.objects.filter(driver=of_b).exists()


def test_recipients_of_a_location_are_read_in_a_fixed_number_of_queries(store_b, django_assert_num_queries):
    products = [ProductFactory() for _ in range(3)]
    for _ in range(3):
        driver_at(store_b)
        DriverFactory()

    location_default_id()  # cached per process
    with django_assert_num_queries(3):  # drivers, their products, mutes
        recipients = selectors.drivers_for_products(products=products, location_id=store_b.pk)

    assert all(len(recipients[p.pk]) == 3 for p in products)


def test_low_stocks_of_several_locations_come_location_by_location_each_cut_at_the_limit(store_b):
    default = location_default()
    driver = DriverFactory()
    juice, water, salt = (ProductFactory(name=n, code=n.upper(), on_hand=q) for n, q in
                          (("Suco", 1), ("Agua", 2), ("Sal", 3)))
    for product, units in ((juice, 4), (water, 0), (salt, 40)):
        stock_at_location(product, store_b, on_hand=units)

    both = selectors.driver_low_stocks(driver=driver, locations=[store_b, default])
    cut = selectors.driver_low_stocks(driver=driver, locations=[store_b, default], limit=1)

    assert [(s.location_id, s.product.code) for s in both] == [
        (store_b.pk, "AGUA"), (store_b.pk, "SUCO"), (default.pk, "SUCO"), (default.pk, "AGUA"), (default.pk, "SAL")]
    assert [(s.location_id, s.product.code) for s in cut] == [(store_b.pk, "AGUA"), (default.pk, "SUCO")]


def test_ruptura_reads_the_same_number_of_queries_for_any_number_of_locations(store_b):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from notifications.bot import ruptura_answer

    third = LocationFactory(code="LOJA-C", name="Loja C")
    product = ProductFactory(name="Farinha", on_hand=0)
    for place in (store_b, third):
        stock_at_location(product, place, on_hand=0)
    two, three = DriverFactory(), DriverFactory()
    two.locations.set([location_default(), store_b])
    three.locations.set([location_default(), store_b, third])

    counts = []
    for driver in (two, three):
        with CaptureQueriesContext(connection) as queries:
            answer = ruptura_answer(driver=driver)
        counts.append(len(queries))
        assert answer.count("• Farinha") == len(driver.locations.all())

    assert counts[0] == counts[1]


def test_a_recipients_locations_are_read_in_one_query_active_default_first_then_by_code(
        store_b, django_assert_num_queries):
    closed = LocationFactory(code="LOJA-0", name="Fechada", active=False)
    early = LocationFactory(code="LOJA-A", name="Loja A")
    driver = driver_at(store_b, closed, early, location_default())
    driver = type(driver).objects.get(pk=driver.pk)
    location_default_id()  # cached per process

    with django_assert_num_queries(1):
        places = selectors.driver_locations(driver)

    assert [p.code for p in places] == [location_default().code, "LOJA-A", "LOJA-B"]


def test_a_recipient_listed_only_at_inactive_locations_belongs_to_the_default_one(store_b):
    driver = driver_at(LocationFactory(code="LOJA-0", active=False))

    assert selectors.driver_locations(driver) == [location_default()]


def test_a_projected_stockout_given_its_location_code_reads_no_location(store_b, django_capture_on_commit_callbacks):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    product = ProductFactory(on_hand=20)
    stock_at_location(product, store_b, on_hand=20)
    of_b = driver_at(store_b)
    day = timezone.localdate() + timezone.timedelta(days=3)
    assert not AlertState.objects.filter(product=product, location=store_b).exists()

    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks() as callbacks:
        assert services.alert_projected_stockout(product_id=product.pk, stockout_date=day, location_id=store_b.pk,
                                                 location_code="LOJA-B")

    assert not [q for q in queries if 'FROM "inventory_location"' in q["sql"]]
    assert AlertOutbox.objects.get().driver_id == of_b.pk
    [publish] = [c for c in callbacks if getattr(c, "func", None) is services.realtime_publish]
    assert publish.args[0][0]["location"] == "LOJA-B"
