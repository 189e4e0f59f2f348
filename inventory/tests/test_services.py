"""Tests for inventory services: stock changes, ledger rows, codes and aliases."""
from datetime import timedelta

import pytest
from django.utils import timezone

from core.errors import Conflict, UnknownCode, ValidationFailed
from inventory import services
from inventory.models import MovementKind, Stock, StockMovement
from inventory.selectors import ledger_drift
from inventory.tests.factories import ProductFactory, UnifiedCodeFactory

pytestmark = pytest.mark.django_db


def stock_of(product) -> Stock:
    return Stock.objects.get(product=product)


def test_receive_adds_units_bumps_version_and_writes_ledger():
    product = ProductFactory(on_hand=3)
    before = stock_of(product)

    services.stock_receive(code=product.code, quantity=7, reason="supplier", actor="user:ana")

    after = stock_of(product)
    assert (before.on_hand, after.on_hand) == (3, 10)
    assert after.version == before.version + 1
    movement = StockMovement.objects.filter(product=product).first()
    assert (movement.kind, movement.quantity, movement.on_hand_after, movement.actor) == (
        MovementKind.RECEIPT, 7, 10, "user:ana")
    assert ledger_drift() == []


def test_receive_through_alias_changes_canonical_product():
    alias = UnifiedCodeFactory(code="OLD-1", product=ProductFactory(code="NEW-1", on_hand=1))

    services.stock_receive(code=" old-1 ", quantity=2)

    assert stock_of(alias.product).on_hand == 3


def test_adjust_requires_reason_and_refuses_going_below_zero():
    product = ProductFactory(on_hand=2)

    with pytest.raises(ValidationFailed):
        services.stock_adjust(code=product.code, delta=-1, reason=" ")
    with pytest.raises(Conflict):
        services.stock_adjust(code=product.code, delta=-3, reason="damaged")

    assert stock_of(product).on_hand == 2
    assert StockMovement.objects.filter(product=product).count() == 1


def test_count_sets_on_hand_and_ledgers_the_difference():
    product = ProductFactory(on_hand=10)

    services.stock_count(code=product.code, counted=4, reason="inventory day")

    assert stock_of(product).on_hand == 4
    assert StockMovement.objects.filter(product=product, kind=MovementKind.COUNT).get().quantity == -6
    assert ledger_drift() == []


@pytest.mark.parametrize("bad", [0, -1, 1.5, "3", True, 10**9])
def test_receive_rejects_bad_quantities(bad):
    product = ProductFactory(on_hand=1)
    with pytest.raises(ValidationFailed):
        services.stock_receive(code=product.code, quantity=bad)
    assert stock_of(product).on_hand == 1


def test_unknown_code_raises():
    with pytest.raises(UnknownCode):
        services.stock_receive(code="NOPE", quantity=1)


def test_product_create_normalises_code_and_creates_stock_row():
    product = services.product_create(code="  abc-1 ", name="Arroz", aliases=["abc-old"])

    assert product.code == "ABC-1"
    assert stock_of(product).on_hand == 0
    assert list(product.unified_codes.values_list("code", flat=True)) == ["ABC-OLD"]


def test_alias_cannot_be_a_product_code_nor_chain():
    first = ProductFactory(code="P-1")
    second = ProductFactory(code="P-2")
    alias = UnifiedCodeFactory(code="A-1", product=first)

    with pytest.raises(Conflict):
        services.unified_code_create(code="P-2", product=first)
    with pytest.raises(Conflict):
        services.product_create(code="A-1", name="x")
    assert alias.product == first and second.code == "P-2"


def test_every_stock_change_moves_updated_at():
    product = ProductFactory(on_hand=3)
    an_hour_ago = timezone.now() - timedelta(hours=1)
    Stock.objects.filter(product=product).update(updated_at=an_hour_ago)

    services.stock_receive(code=product.code, quantity=2, reason="supplier", actor="user:ana")

    after = stock_of(product)
    assert after.on_hand == 5
    assert after.updated_at > an_hour_ago + timedelta(minutes=59)
