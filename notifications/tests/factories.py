"""Factories for notifications: linked drivers and buyers with a chat id, and open reorder suggestions for the
digest."""
import datetime

import factory

from notifications.models import Driver, Role


class DriverFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Driver
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Driver {n}")
    chat_id = factory.Sequence(lambda n: 5_000_000 + n)
    language = "pt-br"


class BuyerFactory(DriverFactory):
    name = factory.Sequence(lambda n: f"Buyer {n}")
    role = Role.BUYER


def open_suggestion(*, quantity: int = 24, pack_size: int | None = 12, stockout: datetime.date | None = None,
                    **product_fields):
    """An open reorder suggestion for a new product (its fields from ``product_fields``), with supply terms of
    ``pack_size`` (None: none) and a projection running out at pace on ``stockout``."""
    from inventory.tests.factories import ProductFactory
    from projections.models import ProjectionSummary, SupplyTerms
    from projections.tests.factories import ReorderSuggestionFactory

    product = ProductFactory(**product_fields)
    if pack_size is not None:
        SupplyTerms.objects.create(product=product, pack_size=pack_size)
    ProjectionSummary.objects.create(product=product, stockout_date_at_pace=stockout)
    return ReorderSuggestionFactory(product=product, quantity=quantity)
