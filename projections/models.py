"""Projection tables: PlannedMovement (dated future quantities), read models (ProjectionSummary, DemandEstimate),
SupplyTerms and ReorderSuggestion; the read models and suggestions are per product and location."""
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from inventory.models import Location, Product


def location_default_pk() -> int:
    """The default location's id: a row written without a location belongs to it, as every row did before
    locations existed (older callers and fixtures keep working)."""
    from inventory.selectors import location_default_id

    return location_default_id()


class Direction(models.TextChoices):
    IN = "in", _("inbound")
    OUT = "out", _("outbound")


class PlannedKind(models.TextChoices):
    PURCHASE = "purchase", _("purchase")
    PRODUCTION = "production", _("production")
    ORDER = "order", _("order")
    PICKING = "picking", _("picking")
    TRANSFER = "transfer", _("transfer")


class Firmness(models.TextChoices):
    FIRM = "firm", _("firm")
    TENTATIVE = "tentative", _("tentative")


class PlannedStatus(models.TextChoices):
    OPEN = "open", _("open")
    DONE = "done", _("done")
    CANCELLED = "cancelled", _("cancelled")


class PlannedMovement(models.Model):
    """A dated future quantity in or out of one canonical product, owned by its source (``source`` + ``source_ref``).

    Only ``open`` rows count in projections; an open row dated before today counts on today and is late.
    """

    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="planned_movements", verbose_name=_("product")
    )
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="planned_movements",
                                 verbose_name=_("location"))
    date = models.DateField(_("date"))
    direction = models.CharField(_("direction"), max_length=3, choices=Direction.choices)
    quantity = models.BigIntegerField(_("quantity"), help_text=_("Units, always positive; direction gives the sign."))
    kind = models.CharField(_("kind"), max_length=16, choices=PlannedKind.choices)
    firmness = models.CharField(_("firmness"), max_length=16, choices=Firmness.choices, default=Firmness.FIRM)
    status = models.CharField(_("status"), max_length=16, choices=PlannedStatus.choices, default=PlannedStatus.OPEN)
    source = models.CharField(_("source"), max_length=64, default="manual")
    source_ref = models.CharField(_("source reference"), max_length=128)
    note = models.CharField(_("note"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("planned movement")
        verbose_name_plural = _("planned movements")
        ordering = ["date", "id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "source_ref"], name="planned_source_ref_unique"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="planned_quantity_positive"),
        ]
        indexes = [
            models.Index(fields=["product", "date"], condition=Q(status="open"), name="planned_open_product_date_idx"),
        ]

    def __str__(self) -> str:
        sign = "+" if self.direction == Direction.IN else "-"
        return f"{self.date} {sign}{self.quantity} ({self.product_id}, {self.source}:{self.source_ref})"


class ProjectionSummary(models.Model):
    """The projected balance of one product at one location, recomputed in SQL. Balances are end of day, from
    ``as_of`` on.

    ``plan_version`` counts planned-movement changes at the location; ``source_version`` is stock.version +
    plan_version as the last recompute read them (the stock row at the same location), so the row is dirty
    whenever the two sides differ.
    """

    # The unique (product, location) constraint starts with product_id, so the column needs no index of its own.
    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="projections", db_index=False, verbose_name=_("product")
    )
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="projections",
                                 default=location_default_pk, verbose_name=_("location"))
    as_of = models.DateField(_("first projected day"), null=True, blank=True)
    horizon_days = models.PositiveSmallIntegerField(_("horizon (days)"), default=0)
    start_balance = models.BigIntegerField(_("starting balance (available)"), default=0)
    threshold = models.BigIntegerField(_("low-stock threshold"), default=0)
    min_balance_7d = models.BigIntegerField(_("lowest balance in 7 days"), null=True, blank=True)
    min_balance_7d_date = models.DateField(_("day of the lowest balance"), null=True, blank=True)
    stockout_date = models.DateField(_("stockout day"), null=True, blank=True)
    below_threshold_date = models.DateField(_("first day below threshold"), null=True, blank=True)
    days_of_cover = models.IntegerField(_("days of cover"), null=True, blank=True)
    late_movements = models.IntegerField(_("late movements"), default=0)
    daily_inbound = ArrayField(models.BigIntegerField(), default=list, blank=True, verbose_name=_("daily inbound"))
    daily_outbound = ArrayField(models.BigIntegerField(), default=list, blank=True, verbose_name=_("daily outbound"))
    daily_balance = ArrayField(models.BigIntegerField(), default=list, blank=True, verbose_name=_("daily balance"))
    plan_version = models.BigIntegerField(_("planned-movement version"), default=0)
    source_version = models.BigIntegerField(_("source version"), default=-1)
    computed_at = models.DateTimeField(_("computed at"), null=True, blank=True)
    # The blend with expected demand (see DemandEstimate); the planned-only fields above do not change.
    demand_rate = models.FloatField(_("daily demand rate"), default=0.0, db_default=0.0)
    daily_expected_outbound = ArrayField(models.FloatField(), null=True, blank=True,
                                         verbose_name=_("daily expected outbound"))
    daily_balance_at_pace = ArrayField(models.FloatField(), null=True, blank=True,
                                       verbose_name=_("daily balance at pace"))
    stockout_date_at_pace = models.DateField(_("stockout day at the current pace"), null=True, blank=True)
    days_of_cover_at_pace = models.IntegerField(_("days of cover at the current pace"), null=True, blank=True)

    class Meta:
        verbose_name = _("projection summary")
        verbose_name_plural = _("projection summaries")
        constraints = [
            models.UniqueConstraint(fields=["product", "location"], name="projection_product_location_unique"),
        ]
        # The ruptures list reads one location at a time, soonest stockout first.
        indexes = [
            models.Index(fields=["location", "stockout_date", "product"], condition=Q(stockout_date__isnull=False),
                         name="projection_loc_stockout_idx"),
            models.Index(fields=["computed_at"], name="projection_computed_idx"),
            models.Index(fields=["location", "stockout_date_at_pace", "product"],
                         condition=Q(stockout_date_at_pace__isnull=False), name="projection_loc_pace_idx"),
        ]

    def __str__(self) -> str:
        return f"projection of {self.product_id} at {self.location_id} as of {self.as_of}"


class DemandBasis(models.TextChoices):
    OWN = "own", _("own sales")
    CATEGORY = "category", _("category profile")
    SHORT = "short", _("too little history")


class DemandEstimate(models.Model):
    """The expected daily outbound demand of one product at one location, estimated in SQL from its sales ledger
    there.

    ``daily_rate`` is the smoothed, weekday-neutral units per day; the demand expected on a day is
    ``daily_rate * weekday_factors[isoweekday - 1]``. ``mae`` is the mean absolute error of the same model
    fitted 28 days earlier and checked against those 28 days (null when none of them could be observed).
    """

    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="demand_estimates", db_index=False, verbose_name=_("product")
    )
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="demand_estimates",
                                 default=location_default_pk, verbose_name=_("location"))
    as_of = models.DateField(_("estimated for"),
                             help_text=_("Store day the estimate was made on (history up to the day before)."))
    daily_rate = models.FloatField(_("daily rate"), default=0.0)
    weekday_factors = ArrayField(models.FloatField(), size=7, default=list, verbose_name=_("weekday factors (Mon–Sun)"))
    mae = models.FloatField(_("mean absolute error (28 days)"), null=True, blank=True)
    history_days = models.IntegerField(_("observed days"), default=0)
    censored_days = models.IntegerField(_("censored days"), default=0)
    basis = models.CharField(_("basis"), max_length=16, choices=DemandBasis.choices, default=DemandBasis.OWN)
    computed_at = models.DateTimeField(_("computed at"))

    class Meta:
        verbose_name = _("demand estimate")
        verbose_name_plural = _("demand estimates")
        constraints = [
            models.UniqueConstraint(fields=["product", "location"], name="demand_product_location_unique"),
        ]

    def __str__(self) -> str:
        return f"demand of {self.product_id} at {self.location_id}: {self.daily_rate:.2f}/day ({self.basis})"


class SupplyTerms(models.Model):
    """How one product is bought: the supplier's lead time, pack size, minimum and optional maximum order.

    Only products with supply terms get reorder suggestions, at every location that stocks the product.
    One row per product, not per location: the terms are agreed with the supplier for the product, and a
    location it reaches more slowly is better served by a transfer (docs/projections.md).
    """

    product = models.OneToOneField(
        Product, on_delete=models.CASCADE, primary_key=True, related_name="supply_terms", verbose_name=_("product")
    )
    lead_time_days = models.PositiveSmallIntegerField(_("lead time (days)"), default=7)
    pack_size = models.PositiveIntegerField(_("pack size"), default=1, help_text=_("Orders are whole packs."))
    min_order = models.PositiveIntegerField(_("minimum order (units)"), default=0)
    max_order = models.PositiveIntegerField(_("maximum order (units)"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("supply terms")
        verbose_name_plural = _("supply terms")
        constraints = [
            models.CheckConstraint(condition=Q(pack_size__gt=0), name="supply_pack_size_positive"),
            models.CheckConstraint(condition=Q(max_order__isnull=True) | Q(max_order__gte=F("pack_size")),
                                   name="supply_max_order_holds_a_pack"),
        ]

    def __str__(self) -> str:
        return f"supply of {self.product_id}: {self.lead_time_days} d, packs of {self.pack_size}"


class ReorderState(models.TextChoices):
    OPEN = "open", _("open")
    ORDERED = "ordered", _("ordered")
    DISMISSED = "dismissed", _("dismissed")


class ReorderSuggestion(models.Model):
    """What to order today for one product at one location. At most one open suggestion per product and
    location: recomputes update it.

    ``quantity`` = demand over lead time + review period + safety stock − available − firm inbound,
    raised to the minimum order and rounded up to whole packs (capped at the maximum order).
    """

    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="reorder_suggestions", verbose_name=_("product")
    )
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="reorder_suggestions",
                                 default=location_default_pk, verbose_name=_("location"))
    state = models.CharField(_("state"), max_length=16, choices=ReorderState.choices, default=ReorderState.OPEN)
    quantity = models.BigIntegerField(_("quantity to order"))
    demand = models.FloatField(_("expected demand over the cover period"))
    safety_stock = models.FloatField(_("safety stock"))
    available = models.BigIntegerField(_("available"))
    firm_inbound = models.BigIntegerField(_("firm inbound in the cover period"))
    cover_days = models.PositiveSmallIntegerField(_("cover period (days)"))
    arrival_date = models.DateField(_("arrival if ordered today"))
    planned_movement = models.OneToOneField(
        PlannedMovement, on_delete=models.SET_NULL, null=True, blank=True, related_name="reorder_suggestion",
        verbose_name=_("purchase"),
    )
    decided_by = models.CharField(_("decided by"), max_length=150, blank=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("reorder suggestion")
        verbose_name_plural = _("reorder suggestions")
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["product", "location"], condition=Q(state="open"),
                                    name="reorder_one_open_per_product_location"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="reorder_quantity_positive"),
        ]
        indexes = [models.Index(fields=["state", "-updated_at"], name="reorder_state_recent_idx")]

    def __str__(self) -> str:
        return f"order {self.quantity} of {self.product_id} at {self.location_id} ({self.state})"
