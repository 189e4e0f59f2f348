"""Tests for the projections migrations: a single-store database keeps its summaries, estimates and suggestions,
now at the default location."""
import pytest
from django.db import IntegrityError, transaction

from core.tests.migrations import default_location, latest, migrate

BEFORE = [("projections", "0005_planned_location"), ("inventory", "0006_location_staff_users")]


@pytest.mark.django_db(transaction=True)
def test_existing_read_models_move_to_the_default_location_and_keep_working():
    old = migrate(BEFORE)
    try:
        Product = old.get_model("inventory", "Product")
        product = Product.objects.create(code="ARROZ-5KG", name="Arroz 5 kg", low_stock_threshold=5)
        other = Product.objects.create(code="FEIJAO-1KG", name="Feijão 1 kg", low_stock_threshold=5)
        default = default_location(old)
        for item in (product, other):
            old.get_model("inventory", "Stock").objects.create(product=item, location=default, on_hand=12, version=3)
            old.get_model("projections", "ProjectionSummary").objects.create(
                product=item, start_balance=12, plan_version=2, source_version=5, stockout_date="2030-01-03")
        old.get_model("projections", "DemandEstimate").objects.create(
            product=product, as_of="2030-01-01", daily_rate=2.5, weekday_factors=[1] * 7,
            computed_at="2030-01-01T00:00:00Z")
        old.get_model("projections", "ReorderSuggestion").objects.create(
            product=product, quantity=24, demand=30, safety_stock=0, available=12, firm_inbound=0, cover_days=12,
            arrival_date="2030-01-06")

        new = migrate(latest())
        Summary = new.get_model("projections", "ProjectionSummary")
        summaries = list(Summary.objects.order_by("product_id"))
        assert [(s.product_id, s.location_id, s.plan_version, s.source_version) for s in summaries] == [
            (product.pk, default.pk, 2, 5), (other.pk, default.pk, 2, 5)]
        assert len({s.pk for s in summaries}) == 2
        estimate = new.get_model("projections", "DemandEstimate").objects.get(product_id=product.pk)
        assert (estimate.location_id, estimate.daily_rate) == (default.pk, 2.5)
        suggestion = new.get_model("projections", "ReorderSuggestion").objects.get(product_id=product.pk)
        assert (suggestion.location_id, suggestion.quantity, suggestion.state) == (default.pk, 24, "open")

        # The same product gets a row at another location; a second row at the same one is refused.
        store = new.get_model("inventory", "Location").objects.create(code="LOJA-B", name="Loja B")
        Summary.objects.create(product_id=product.pk, location_id=store.pk)
        with pytest.raises(IntegrityError), transaction.atomic():
            Summary.objects.create(product_id=product.pk, location_id=store.pk)
        assert Summary.objects.filter(product_id=product.pk).count() == 2
    finally:
        migrate(latest())


@pytest.mark.django_db(transaction=True)
def test_the_migration_goes_back_to_one_row_per_product():
    new = migrate(latest())
    try:
        product = new.get_model("inventory", "Product").objects.create(code="SAL-1KG", name="Sal")
        new.get_model("projections", "ProjectionSummary").objects.create(product_id=product.pk, start_balance=7)

        old = migrate(BEFORE)

        row = old.get_model("projections", "ProjectionSummary").objects.get(pk=product.pk)
        assert row.start_balance == 7
        default_location(old)
    finally:
        migrate(latest())
