"""Order tables: Order (one per reservation), its lines, its step history and the invoice counter per series."""
import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.models import ApiClient
from inventory.models import LocatedLinesQuerySet, Location, Product
from reservations.models import Reservation


class OrderStatus(models.TextChoices):
    RECEIVED = "received", _("received")
    PROCESSED = "processed", _("processed")
    FAILED = "failed", _("failed")


class Order(models.Model):
    """Written in the request's transaction as ``received``; a worker turns it into ``processed`` or ``failed``."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(ApiClient, null=True, blank=True, on_delete=models.PROTECT, related_name="orders",
                               verbose_name=_("API client"))
    reservation = models.OneToOneField(Reservation, on_delete=models.PROTECT, related_name="order",
                                       verbose_name=_("reservation"))
    status = models.CharField(_("status"), max_length=12, choices=OrderStatus.choices, default=OrderStatus.RECEIVED)
    reference = models.CharField(_("external reference"), max_length=128, blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=255, null=True, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True, editable=False,
                                           verbose_name=_("request fingerprint"))
    invoice_series = models.CharField(_("invoice series"), max_length=16, blank=True)
    invoice_number = models.PositiveBigIntegerField(_("invoice number"), null=True, blank=True)
    failure_reason = models.TextField(_("failure reason"), blank=True)
    queued_at = models.DateTimeField(_("last queued at"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)

    objects = LocatedLinesQuerySet.as_manager()

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["client", "idempotency_key"], condition=Q(idempotency_key__isnull=False),
                                    nulls_distinct=False, name="order_idempotency_key_per_client"),
            models.UniqueConstraint(fields=["invoice_series", "invoice_number"],
                                    condition=Q(invoice_number__isnull=False), name="order_invoice_number_once"),
        ]
        indexes = [
            models.Index(fields=["queued_at"], condition=Q(status="received"), name="order_received_queued_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines", verbose_name=_("order"))
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="order_lines",
                                verbose_name=_("product"))
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="order_lines",
                                 verbose_name=_("location"))
    quantity = models.BigIntegerField(_("quantity"))

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        constraints = [models.UniqueConstraint(fields=["order", "product", "location"],
                                               name="order_line_one_per_product_location")]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product_id}"


class OrderStep(models.Model):
    """One entry of an order's history: received, stock_confirmed, invoiced, processed, failed, retried, requeued."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="steps", verbose_name=_("order"))
    step = models.CharField(_("step"), max_length=32)
    detail = models.CharField(_("detail"), max_length=500, blank=True)
    at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        verbose_name = _("order step")
        verbose_name_plural = _("order steps")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.step


class InvoiceSeries(models.Model):
    """The counter of one invoice series. Taken under a row lock in the transaction that uses the number,
    so a rolled-back order gives its number back and numbers stay gapless."""

    series = models.CharField(_("series"), max_length=16, primary_key=True)
    last_number = models.PositiveBigIntegerField(_("last number"), default=0)

    class Meta:
        verbose_name = _("invoice series")
        verbose_name_plural = _("invoice series")

    def __str__(self) -> str:
        return f"{self.series}: {self.last_number}"
