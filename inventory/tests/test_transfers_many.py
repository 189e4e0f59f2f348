"""transfers_create: several products between two locations in one transaction, all or none."""
import pytest

from core.errors import InsufficientStock, LocationForbidden, UnknownCode, ValidationFailed
from inventory import services
from inventory.models import StockMovement, Transfer
from inventory.selectors import ledger_drift, location_default, stock_at
from inventory.tests.factories import LocationFactory, ProductFactory, staff_at, stock_at_location
from inventory.tests.test_concurrency import run_in_threads


@pytest.fixture
def store_b(db):
    return LocationFactory(code="LOJA-B")


@pytest.mark.django_db
def test_a_product_named_twice_or_by_a_unified_code_moves_the_sum(store_b):
    product = ProductFactory(code="MNY-1", on_hand=10)
    services.unified_code_create(code="MNY-1-OLD", product=product)

    transfers = services.transfers_create(lines=[("MNY-1", 2), ("mny-1-old", 3)], source="", destination="LOJA-B")

    assert [(t.product.code, t.quantity) for t in transfers] == [("MNY-1", 5)]
    assert stock_at(product=product, location=store_b).on_hand == 5
    assert ledger_drift() == []


@pytest.mark.django_db
def test_every_unknown_code_is_named_and_nothing_moves(store_b):
    ProductFactory(code="MNY-2", on_hand=10)

    with pytest.raises(UnknownCode) as refused:
        services.transfers_create(lines=[("MNY-2", 1), ("NOPE-1", 1), ("NOPE-2", 1)], source="", destination="LOJA-B")

    assert refused.value.details["codes"] == ["NOPE-1", "NOPE-2"]
    assert not Transfer.objects.exists()


@pytest.mark.django_db
def test_every_short_product_is_named_with_what_is_available(store_b):
    ProductFactory(code="MNY-3", on_hand=1)
    ProductFactory(code="MNY-4", on_hand=9)

    with pytest.raises(InsufficientStock) as refused:
        services.transfers_create(lines=[("MNY-3", 2), ("MNY-4", 9)], source="", destination="LOJA-B")

    assert refused.value.lines == [{"code": "MNY-3", "requested": 2, "available": 1,
                                    "location": location_default().code}]
    assert not StockMovement.objects.filter(transfer__isnull=False).exists()


@pytest.mark.django_db
def test_no_line_or_a_bad_quantity_is_refused(store_b):
    ProductFactory(code="MNY-5", on_hand=3)
    with pytest.raises(ValidationFailed):
        services.transfers_create(lines=[], source="", destination="LOJA-B")
    with pytest.raises(ValidationFailed):
        services.transfers_create(lines=[("MNY-5", 0)], source="", destination="LOJA-B")
    assert not Transfer.objects.exists()


@pytest.mark.django_db
def test_a_staff_user_limited_elsewhere_is_refused(store_b):
    ProductFactory(code="MNY-6", on_hand=3)
    with pytest.raises(LocationForbidden):
        services.transfers_create(lines=[("MNY-6", 1)], source="", destination="LOJA-B", client=staff_at(store_b))
    assert not Transfer.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_carts_in_opposite_orders_never_deadlock_nor_oversell():
    LocationFactory(code="LOJA-B")
    first, second = ProductFactory(code="MNY-7", on_hand=6), ProductFactory(code="MNY-8", on_hand=6)

    errors = run_in_threads(10, lambda i: services.transfers_create(
        lines=[("MNY-7", 1), ("MNY-8", 1)] if i % 2 else [("MNY-8", 1), ("MNY-7", 1)],
        source="", destination="LOJA-B"))

    assert len(errors) == 4 and all(isinstance(e, InsufficientStock) for e in errors)
    assert stock_at(product=first, location=location_default()).on_hand == 0
    assert stock_at(product=second, location=location_default()).on_hand == 0
    assert Transfer.objects.count() == 12
    assert ledger_drift() == []


@pytest.mark.django_db(transaction=True)
def test_opposite_transfers_at_once_neither_deadlock_nor_oversell(caplog):
    store_b = LocationFactory(code="LOJA-B")
    default = location_default()
    products = [ProductFactory(code=f"MNY-9{n}", on_hand=4) for n in range(3)]
    for product in products:
        stock_at_location(product, store_b, on_hand=4)
    codes = [product.code for product in products]

    # Odd threads move A→B, even ones B→A, each with the lines in its own order.
    errors = run_in_threads(10, lambda i: services.transfers_create(
        lines=[(code, 1) for code in (codes if i % 2 else codes[::-1])],
        source="" if i % 2 else "LOJA-B", destination="LOJA-B" if i % 2 else default.code))

    assert errors == []
    # No deadlock to retry; a failure names what was retried (the function and the attempt).
    retried = [(r.function, r.attempt) for r in caplog.records if r.getMessage() == "transaction retried"]
    assert retried == []
    for product in products:
        assert stock_at(product=product, location=default).on_hand == 4
        assert stock_at(product=product, location=store_b).on_hand == 4
    assert Transfer.objects.count() == 30
    assert ledger_drift() == []
