"""Tests for the projections_rebuild command."""
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from inventory.tests.factories import ProductFactory
from projections.models import ProjectionSummary


@pytest.mark.django_db(transaction=True)
def test_rebuild_computes_every_product_and_shows_progress():
    products = ProductFactory.create_batch(5, on_hand=7)
    assert ProjectionSummary.objects.count() == 0
    out = StringIO()

    call_command("projections_rebuild", "--batch-size", "2", "--workers", "2", stdout=out)

    assert ProjectionSummary.objects.filter(computed_at__isnull=False, start_balance=7).count() == len(products)
    text = out.getvalue()
    assert "2/5" in text and "5/5" in text and "5 projections rebuilt" in text


@pytest.mark.django_db
def test_rebuild_refuses_a_zero_batch():
    with pytest.raises(CommandError):
        call_command("projections_rebuild", "--batch-size", "0", stdout=StringIO())
