"""Tests for the inventory migrations: a single-store database moves to its default location intact."""
import pytest
from django.conf import settings

from core.tests.migrations import latest, migrate

# Before locations, with every app whose tables gained a location column held at its last migration without it.
BEFORE = [("inventory", "0004_import_job"), ("reservations", "0002_verbose_names"), ("orders", "0002_verbose_names"),
          ("projections", "0004_verbose_names"), ("core", "0002_verbose_names")]


@pytest.mark.django_db(transaction=True)
def test_an_existing_single_store_database_moves_to_the_default_location_with_its_ledger_and_holds():
    old = migrate(BEFORE)
    try:
        Product = old.get_model("inventory", "Product")
        product = Product.objects.create(code="ARROZ-5KG", name="Arroz 5 kg", low_stock_threshold=5)
        old.get_model("inventory", "Stock").objects.create(product=product, on_hand=12, reserved=2, version=3)
        movements = old.get_model("inventory", "StockMovement").objects
        movements.create(product=product, kind="receipt", quantity=15, on_hand_after=15)
        movements.create(product=product, kind="sale", quantity=-3, on_hand_after=12)
        reservation = old.get_model("reservations", "Reservation").objects.create(
            status="active", expires_at="2030-01-01T00:00:00Z")
        old.get_model("reservations", "ReservationLine").objects.create(
            reservation=reservation, product=product, quantity=2)
        old.get_model("projections", "PlannedMovement").objects.create(
            product=product, date="2030-01-02", direction="in", quantity=10, kind="purchase", source_ref="po-1")
        assert old.get_model("inventory", "Stock").objects.get(product=product).on_hand == 12

        new = migrate(latest())
        location = new.get_model("inventory", "Location").objects.get(code=settings.DEFAULT_LOCATION_CODE)
        stock = new.get_model("inventory", "Stock").objects.get(product_id=product.pk)
        assert (stock.location_id, stock.on_hand, stock.reserved, stock.version) == (location.pk, 12, 2, 3)
        ledger = new.get_model("inventory", "StockMovement").objects.filter(product_id=product.pk)
        assert {m.location_id for m in ledger} == {location.pk}
        assert sum(m.quantity for m in ledger) == stock.on_hand
        assert stock.movement_count == ledger.count() == 2  # counted from the ledger by 0008
        line = new.get_model("reservations", "ReservationLine").objects.get(reservation_id=reservation.pk)
        assert line.location_id == location.pk
        planned = new.get_model("projections", "PlannedMovement").objects.get(source_ref="po-1")
        assert planned.location_id == location.pk
        assert new.get_model("core", "ApiClient")._meta.get_field("location_codes").default() == []
    finally:
        migrate(latest())


@pytest.mark.django_db(transaction=True)
def test_a_second_row_for_the_same_product_and_location_is_refused_by_the_database():
    from django.db import IntegrityError, transaction

    from inventory.models import Stock
    from inventory.selectors import location_default_id
    from inventory.tests.factories import ProductFactory

    product = ProductFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Stock.objects.create(product=product, location_id=location_default_id())
    assert Stock.objects.filter(product=product).count() == 1
