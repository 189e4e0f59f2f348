"""Tests for transfers between locations: paired ledger rows, transit as a planned inbound, the audit per location."""
import pytest
from django.core.management import call_command

from core.errors import Conflict, InsufficientStock, LocationForbidden, ValidationFailed
from core.tests.factories import ApiClientFactory
from inventory import services
from inventory.models import MovementKind, Stock, StockMovement, TransferStatus
from inventory.selectors import location_default, stock_at
from inventory.tests.factories import LocationFactory, ProductFactory
from projections.models import PlannedMovement, PlannedStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def store_b():
    return LocationFactory(code="LOJA-B", name="Loja B")


def _counts(product, location):
    stock = stock_at(product=product, location=location)
    return stock.on_hand, stock.reserved


def test_a_transfer_moves_units_as_two_ledger_rows_naming_it_in_one_transaction(store_b):
    product = ProductFactory(on_hand=10)
    default = location_default()
    assert _counts(product, default) == (10, 0) and _counts(product, store_b) == (0, 0)

    transfer = services.transfer_create(code=product.code, source=default.code, destination="loja-b", quantity=4,
                                        actor="test")

    assert transfer.status == TransferStatus.RECEIVED
    assert _counts(product, default) == (6, 0) and _counts(product, store_b) == (4, 0)
    rows = list(StockMovement.objects.filter(transfer=transfer).order_by("quantity"))
    assert [(m.location_id, m.kind, m.quantity, m.on_hand_after) for m in rows] == [
        (default.pk, MovementKind.TRANSFER_OUT, -4, 6), (store_b.pk, MovementKind.TRANSFER_IN, 4, 4)]


def test_only_available_units_move_and_a_refusal_names_the_source(store_b):
    product = ProductFactory(on_hand=5)
    Stock.objects.filter(product=product).update(reserved=3)

    with pytest.raises(InsufficientStock) as refused:
        services.transfer_create(code=product.code, source="", destination="LOJA-B", quantity=3)

    assert refused.value.details["lines"] == [
        {"code": product.code, "requested": 3, "available": 2, "location": location_default().code}]
    assert _counts(product, location_default()) == (5, 3)
    assert not StockMovement.objects.filter(kind=MovementKind.TRANSFER_OUT).exists()


def test_a_transfer_needs_two_different_active_locations(store_b):
    product = ProductFactory(on_hand=5)
    with pytest.raises(ValidationFailed) as same:
        services.transfer_create(code=product.code, source="LOJA-B", destination="loja-b", quantity=1)
    # Named as the request names them, so a client sees which of its fields to change.
    assert same.value.details == {"source": "LOJA-B", "destination": "LOJA-B"}
    with pytest.raises(ValidationFailed) as unknown:
        services.transfer_create(code=product.code, source="LOJA-B", destination="NOWHERE", quantity=1)
    assert unknown.value.code == "unknown_location"


def test_in_transit_units_leave_now_count_as_planned_inbound_and_arrive_on_receipt(store_b):
    product = ProductFactory(on_hand=10)
    default = location_default()

    transfer = services.transfer_create(code=product.code, source=default.code, destination="LOJA-B", quantity=6,
                                        in_transit=True)

    assert transfer.status == TransferStatus.SHIPPED
    assert _counts(product, default) == (4, 0) and _counts(product, store_b) == (0, 0)
    planned = PlannedMovement.objects.get(source="transfer", source_ref=str(transfer.pk))
    assert (planned.location_id, planned.direction, planned.quantity, planned.status) == (store_b.pk, "in", 6, "open")

    services.transfer_receive(transfer_id=transfer.pk)
    again = services.transfer_receive(transfer_id=transfer.pk)

    assert again.status == TransferStatus.RECEIVED
    assert _counts(product, store_b) == (6, 0)
    assert StockMovement.objects.filter(transfer=transfer, kind=MovementKind.TRANSFER_IN).count() == 1
    planned.refresh_from_db()
    assert planned.status == PlannedStatus.DONE
    with pytest.raises(Conflict):
        services.transfer_cancel(transfer_id=transfer.pk)


def test_a_cancelled_transfer_puts_the_units_back_at_the_source(store_b):
    product = ProductFactory(on_hand=10)
    transfer = services.transfer_create(code=product.code, source="", destination="LOJA-B", quantity=7,
                                        in_transit=True)
    assert _counts(product, location_default()) == (3, 0)

    services.transfer_cancel(transfer_id=transfer.pk)

    assert _counts(product, location_default()) == (10, 0)
    assert PlannedMovement.objects.get(source="transfer").status == PlannedStatus.CANCELLED
    with pytest.raises(Conflict):
        services.transfer_receive(transfer_id=transfer.pk)


def test_a_client_limited_to_one_location_cannot_move_units_out_of_another(store_b):
    product = ProductFactory(on_hand=10)
    client = ApiClientFactory(scopes=["manage"], location_codes=["LOJA-B"])
    with pytest.raises(LocationForbidden):
        services.transfer_create(code=product.code, source="", destination="LOJA-B", quantity=1, client=client)
    assert _counts(product, location_default()) == (10, 0)


def test_the_audit_checks_the_ledger_per_location(store_b, capsys):
    product = ProductFactory(on_hand=10)
    services.transfer_create(code=product.code, source="", destination="LOJA-B", quantity=4)
    call_command("stock_audit")  # agrees: exits normally

    Stock.objects.filter(product=product, location=store_b).update(on_hand=5)
    with pytest.raises(SystemExit):
        call_command("stock_audit")
    assert f"{product.code} @ LOJA-B: on_hand=5 ledger_sum=4" in capsys.readouterr().err


def test_receiving_at_a_new_location_creates_its_stock_row(store_b):
    product = ProductFactory()
    assert not Stock.objects.filter(product=product, location=store_b).exists()

    stock = services.stock_receive(code=product.code, quantity=8, location="LOJA-B")

    assert (stock.location_id, stock.on_hand) == (store_b.pk, 8)
    assert _counts(product, location_default()) == (0, 0)
