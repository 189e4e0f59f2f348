"""Inventory tables: Product, UnifiedCode (aliases), Stock (one counter row per product) and StockMovement (ledger)."""
from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from inventory.codes import CODE_MAX_LENGTH


class Unit(models.TextChoices):
    UNIT = "un", _("unit")
    KILOGRAM = "kg", _("kilogram")
    LITRE = "l", _("litre")
    BOX = "cx", _("box")
    PACK = "pct", _("pack")


class ProductQuerySet(models.QuerySet):
    def active(self):
        return self.filter(active=True)

    def search(self, term: str):
        term = term.strip()
        if not term:
            return self
        return self.filter(
            Q(code__icontains=term) | Q(name__icontains=term) | Q(unified_codes__code__icontains=term)
        ).distinct()


class Product(models.Model):
    code = models.CharField(_("code"), max_length=CODE_MAX_LENGTH, unique=True)
    name = models.CharField(_("name"), max_length=200)
    category = models.CharField(_("category"), max_length=100, blank=True, db_index=True)
    unit = models.CharField(_("unit"), max_length=8, choices=Unit.choices, default=Unit.UNIT)
    low_stock_threshold = models.PositiveIntegerField(
        _("low-stock threshold"), default=settings.STOCK_DEFAULT_LOW_THRESHOLD
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = ProductQuerySet.as_manager()

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["code"]
        constraints = [models.CheckConstraint(condition=~Q(code=""), name="product_code_not_empty")]

    def __str__(self) -> str:
        return f"{self.code} · {self.name}"


class UnifiedCode(models.Model):
    """An alias: another code whose stock is the product's stock. Never a product code itself, never chained."""

    code = models.CharField(_("code"), max_length=CODE_MAX_LENGTH, unique=True)
    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="unified_codes", verbose_name=_("product")
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("unified code")
        verbose_name_plural = _("unified codes")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} → {self.product.code}"


class StockQuerySet(models.QuerySet):
    def below_threshold(self):
        return self.filter(available__lt=F("product__low_stock_threshold"))

    def out_of_stock(self):
        return self.filter(available__lte=0)


class Stock(models.Model):
    """Counters for one product. Changed only by services, under a row lock; ``version`` grows by one per change."""

    product = models.OneToOneField(Product, on_delete=models.CASCADE, related_name="stock", verbose_name=_("product"))
    on_hand = models.BigIntegerField(_("on hand"), default=0)
    reserved = models.BigIntegerField(_("reserved"), default=0)
    available = models.GeneratedField(
        expression=F("on_hand") - F("reserved"),
        output_field=models.BigIntegerField(),
        db_persist=True,
        verbose_name=_("available"),
    )
    version = models.BigIntegerField(_("version"), default=0)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = StockQuerySet.as_manager()

    class Meta:
        verbose_name = _("stock")
        verbose_name_plural = _("stock")
        constraints = [
            models.CheckConstraint(condition=Q(on_hand__gte=0), name="stock_on_hand_not_negative"),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="stock_reserved_not_negative"),
        ]
        # No index on the counters (available included): an update that changes no indexed column
        # can stay on its page as a HOT update, with no index entries to add. Storefront rushes update
        # one row hundreds of times a second; the lists that filter on ``available`` scan one row per
        # product either way. The table keeps room on each page for those updates (migration 0002).

    def __str__(self) -> str:
        return f"{self.product_id}: {self.on_hand} on hand, {self.reserved} reserved"


class MovementKind(models.TextChoices):
    RECEIPT = "receipt", _("receipt")
    SALE = "sale", _("sale")
    ADJUSTMENT = "adjustment", _("adjustment")
    COUNT = "count", _("count")
    RETURN = "return", _("return")


class StockMovement(models.Model):
    """One ledger row. For every product the quantities sum to Stock.on_hand (see stock_audit)."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="movements", verbose_name=_("product"))
    kind = models.CharField(_("kind"), max_length=16, choices=MovementKind.choices)
    quantity = models.BigIntegerField(_("quantity"), help_text=_("Signed change of on-hand units."))
    on_hand_after = models.BigIntegerField(_("on hand after"))
    reason = models.CharField(_("reason"), max_length=255, blank=True)
    reference = models.CharField(_("external reference"), max_length=128, blank=True, db_index=True)
    reservation_id = models.UUIDField(_("reservation"), null=True, blank=True, db_index=True)
    actor = models.CharField(_("actor"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("stock movement")
        verbose_name_plural = _("stock movements")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["product", "-id"], name="movement_product_recent_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.quantity:+d} ({self.product_id})"


class ImportStatus(models.TextChoices):
    QUEUED = "queued", _("queued")
    RUNNING = "running", _("running")
    SUCCEEDED = "succeeded", _("succeeded")
    FAILED = "failed", _("failed")


class ImportJob(models.Model):
    """One ERP import: the file, where it is (status, phase, rows done of total) and how it ended.

    Progress columns are written on a connection of their own while the import's transaction is
    open, so they can be read mid-run; the outcome is written in the import's own transaction.
    """

    status = models.CharField(_("status"), max_length=16, choices=ImportStatus.choices, default=ImportStatus.QUEUED)
    phase = models.CharField(_("phase"), max_length=16, default="queued")
    fmt = models.CharField(_("format"), max_length=8)
    content = models.BinaryField(_("file"), default=b"", help_text=_("Emptied when the job ends."))
    reference = models.CharField(_("reference"), max_length=128, blank=True)
    dry_run = models.BooleanField(_("check only"), default=False)
    actor = models.CharField(_("actor"), max_length=150, blank=True)
    rows_total = models.PositiveIntegerField(_("rows"), default=0)
    rows_done = models.PositiveIntegerField(_("rows done"), default=0)
    errors = models.JSONField(_("bad lines"), default=list, blank=True)
    error_count = models.PositiveIntegerField(_("bad lines"), default=0)
    failure = models.JSONField(_("failure"), null=True, blank=True,
                               help_text=_('{"code", "message", "details"} of a failed job.'))
    result = models.JSONField(_("result"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("stock import")
        verbose_name_plural = _("stock imports")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "updated_at"], name="importjob_status_idx")]

    def __str__(self) -> str:
        return f"import {self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (ImportStatus.SUCCEEDED, ImportStatus.FAILED)
