"""Factories for projections: planned movements on canonical products."""
import datetime

import factory

from projections.models import Direction, Firmness, PlannedKind, PlannedMovement, PlannedStatus


class PlannedMovementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PlannedMovement

    product = factory.SubFactory("inventory.tests.factories.ProductFactory")
    date = factory.LazyFunction(datetime.date.today)
    direction = Direction.OUT
    quantity = 1
    kind = PlannedKind.ORDER
    firmness = Firmness.FIRM
    status = PlannedStatus.OPEN
    source = "test"
    source_ref = factory.Sequence(lambda n: f"ref-{n}")
