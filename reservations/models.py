"""Reservation tables: a hold on stock for one client (Reservation) and what it holds (ReservationLine)."""
import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.models import ApiClient
from inventory.models import LocatedLinesQuerySet, Location, Product


class ReservationStatus(models.TextChoices):
    ACTIVE = "active", _("active")
    CONFIRMED = "confirmed", _("confirmed")
    RELEASED = "released", _("released")
    EXPIRED = "expired", _("expired")


class ReservationQuerySet(LocatedLinesQuerySet):
    def active(self):
        return self.filter(status=ReservationStatus.ACTIVE)

    def due(self, *, now):
        return self.filter(status=ReservationStatus.ACTIVE, expires_at__lte=now)


class Reservation(models.Model):
    """Units held for a client until ``expires_at``. While active, its lines count in ``Stock.reserved``."""

    # Random ids: sequential ones would let one client enumerate another's reservations.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(
        ApiClient, null=True, blank=True, on_delete=models.PROTECT, related_name="reservations",
        verbose_name=_("API client"),
    )
    status = models.CharField(_("status"), max_length=16, choices=ReservationStatus.choices,
                              default=ReservationStatus.ACTIVE)
    expires_at = models.DateTimeField(_("expires at"))
    reference = models.CharField(_("external reference"), max_length=128, blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=255, null=True, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True, editable=False,
                                           verbose_name=_("request fingerprint"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    objects = ReservationQuerySet.as_manager()

    class Meta:
        verbose_name = _("reservation")
        verbose_name_plural = _("reservations")
        ordering = ["-created_at"]
        constraints = [
            # Staff reservations (no client) share one key space rather than escaping the rule.
            models.UniqueConstraint(
                fields=["client", "idempotency_key"], condition=Q(idempotency_key__isnull=False),
                nulls_distinct=False, name="reservation_idempotency_key_per_client",
            ),
        ]
        indexes = [
            models.Index(fields=["expires_at"], condition=Q(status="active"), name="reservation_active_due_idx"),
            models.Index(fields=["client", "-created_at"], name="reservation_client_recent_idx"),
            models.Index(fields=["status", "-created_at"], name="reservation_status_recent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"


class ReservationLine(models.Model):
    reservation = models.ForeignKey(Reservation, on_delete=models.CASCADE, related_name="lines",
                                    verbose_name=_("reservation"))
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="reservation_lines",
                                verbose_name=_("product"))
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="reservation_lines",
                                 verbose_name=_("location"))
    quantity = models.BigIntegerField(_("quantity"))

    class Meta:
        verbose_name = _("reservation line")
        verbose_name_plural = _("reservation lines")
        constraints = [
            models.UniqueConstraint(fields=["reservation", "product", "location"],
                                    name="reservation_line_one_per_product_location"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="reservation_line_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product_id}"
