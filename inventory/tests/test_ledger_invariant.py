"""Property test: any sequence of stock operations keeps the ledger summing to on_hand, and counted by its stock rows."""
import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import DomainError
from inventory import services
from inventory.models import Stock
from inventory.selectors import ledger_audit
from inventory.tests.factories import ProductFactory, UnifiedCodeFactory

CODES = ["INV-1", "INV-2", "INV-ALIAS"]

operation = st.one_of(
    st.tuples(st.just("receive"), st.sampled_from(CODES), st.integers(1, 50)),
    st.tuples(st.just("return"), st.sampled_from(CODES), st.integers(1, 5)),
    st.tuples(st.just("adjust"), st.sampled_from(CODES), st.integers(-60, 60).filter(bool)),
    st.tuples(st.just("count"), st.sampled_from(CODES), st.integers(0, 80)),
)


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=st.lists(operation, min_size=1, max_size=25))
def test_random_operations_keep_ledger_equal_to_on_hand(operations):
    # Hypothesis runs many examples inside one test transaction: each runs in a savepoint rolled back at the end.
    with transaction.atomic():
        _check_operations(operations)
        transaction.set_rollback(True)


def _check_operations(operations) -> None:
    first = ProductFactory(code="INV-1", on_hand=10)
    ProductFactory(code="INV-2")
    UnifiedCodeFactory(code="INV-ALIAS", product=first)
    expected = {"INV-1": 10, "INV-2": 0}
    for name, code, amount in operations:
        canonical = "INV-1" if code == "INV-ALIAS" else code
        try:
            if name == "receive":
                services.stock_receive(code=code, quantity=amount)
                expected[canonical] += amount
            elif name == "return":
                services.stock_return(code=code, quantity=amount)
                expected[canonical] += amount
            elif name == "adjust":
                services.stock_adjust(code=code, delta=amount, reason="property")
                expected[canonical] += amount
            else:
                services.stock_count(code=code, counted=amount)
                expected[canonical] = amount
        except DomainError:
            assert name == "adjust" and expected[canonical] + amount < 0

    actual = dict(Stock.objects.values_list("product__code", "on_hand"))
    assert actual == expected
    assert ledger_audit() == {"sum": [], "count": []}  # and each stock row counts its ledger rows
