"""Factories for projections: planned movements on canonical products."""
import datetime

import factory
from django.db.models import F

from projections.models import Direction, Firmness, PlannedKind, PlannedMovement, PlannedStatus


class PlannedMovementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PlannedMovement

    product = factory.SubFactory("inventory.tests.factories.ProductFactory")
    location_id = factory.LazyFunction(lambda: _default_location_id())
    date = factory.LazyFunction(datetime.date.today)
    direction = Direction.OUT
    quantity = 1
    kind = PlannedKind.ORDER
    firmness = Firmness.FIRM
    status = PlannedStatus.OPEN
    source = "test"
    source_ref = factory.Sequence(lambda n: f"ref-{n}")


def _default_location_id() -> int:
    from inventory.selectors import location_default_id

    return location_default_id()


def sales_history(product, *, today: datetime.date, demand: list[int], opening: int,
                  receipts: dict[int, int] | None = None) -> None:
    """Write ``product``'s ledger for the days before ``today``: ``demand[i]`` units wanted on day i
    (the last item is yesterday), sold only while stock lasts; ``opening`` units received the day before
    the first, and ``receipts[i]`` received at the start of day i. Rows get their real store-day times."""
    from django.conf import settings
    from zoneinfo import ZoneInfo

    from inventory.models import MovementKind, Stock, StockMovement
    from inventory.selectors import location_default_id

    tz = ZoneInfo(settings.TIME_ZONE)
    first = today - datetime.timedelta(days=len(demand))
    at = lambda day, hour: datetime.datetime.combine(day, datetime.time(hour), tzinfo=tz)  # noqa: E731
    rows = [(MovementKind.RECEIPT, opening, at(first - datetime.timedelta(days=1), 8))]
    on_hand = opening
    for index, wanted in enumerate(demand):
        day = first + datetime.timedelta(days=index)
        received = (receipts or {}).get(index, 0)
        if received:
            rows.append((MovementKind.RECEIPT, received, at(day, 8)))
            on_hand += received
        sold = min(wanted, on_hand)
        if sold:
            rows.append((MovementKind.SALE, -sold, at(day, 12)))
            on_hand -= sold
    running = 0
    for kind, quantity, created_at in rows:
        running += quantity
        row = StockMovement.objects.create(product=product, location_id=location_default_id(), kind=kind,
                                           quantity=quantity, on_hand_after=running, reason="history")
        StockMovement.objects.filter(pk=row.pk).update(created_at=created_at)
    Stock.objects.filter(product=product, location_id=location_default_id()).update(
        on_hand=running, movement_count=F("movement_count") + len(rows))


class SupplyTermsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "projections.SupplyTerms"

    product = factory.SubFactory("inventory.tests.factories.ProductFactory")
    lead_time_days = 5
    pack_size = 12
    min_order = 0


class ReorderSuggestionFactory(factory.django.DjangoModelFactory):
    """An open suggestion written as a recompute would leave it (the figures are not recomputed)."""

    class Meta:
        model = "projections.ReorderSuggestion"

    product = factory.SubFactory("inventory.tests.factories.ProductFactory")
    quantity = 24
    demand = 30.0
    safety_stock = 0.0
    available = 6
    firm_inbound = 0
    cover_days = 12
    arrival_date = factory.LazyFunction(lambda: datetime.date.today() + datetime.timedelta(days=5))
