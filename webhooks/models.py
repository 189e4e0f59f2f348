"""Webhook tables: WebhookEndpoint (who wants which events) and WebhookDelivery (the outbox, one row per POST)."""
import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _


class EventType(models.TextChoices):
    STOCK_CHANGED = "stock.changed", "stock.changed"
    STOCK_LOW = "stock.low", "stock.low"
    STOCK_OUT = "stock.out", "stock.out"
    STOCK_BACK_IN = "stock.back_in", "stock.back_in"
    RESERVATION_CONFIRMED = "reservation.confirmed", "reservation.confirmed"
    ORDER_PROCESSED = "order.processed", "order.processed"
    REORDER_SUGGESTED = "reorder.suggested", "reorder.suggested"


# The type of a delivery that carries several events (``{"type": "batch", "events": [...]}``); not an
# event type anyone subscribes to.
BATCH = "batch"
DELIVERY_TYPES = [*EventType.choices, (BATCH, BATCH)]


class WebhookEndpoint(models.Model):
    url = models.URLField(_("URL"), max_length=500)
    secret = models.CharField(_("signing secret"), max_length=128)
    event_types = models.JSONField(_("event types"), default=list)
    active = models.BooleanField(_("active"), default=True)
    batches = models.BooleanField(
        _("batched deliveries"), default=True,
        help_text=_("Several events of one change travel in one request (up to WEBHOOK_BATCH_MAX). Off: one "
                    "request per event."))
    description = models.CharField(_("description"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.description or self.url


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    DELIVERED = "delivered", _("delivered")
    DEAD = "dead", _("dead")


class WebhookDelivery(models.Model):
    """One POST to one endpoint: one event, or (``event_type`` "batch") several events of one change.

    ``event_id`` is the delivery's idempotency key: for one event its id, the same for every endpoint; for a
    batch an id derived from its events' ids. Each event in a batch keeps its own id.
    """

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries",
                                 verbose_name=_("endpoint"))
    event_id = models.UUIDField(_("event id"), default=uuid.uuid4)
    event_type = models.CharField(_("event type"), max_length=40, choices=DELIVERY_TYPES)
    event_count = models.PositiveIntegerField(_("events"), default=1)
    payload = models.JSONField(_("payload"))
    status = models.CharField(_("status"), max_length=12, choices=DeliveryStatus.choices,
                              default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"))
    last_status_code = models.PositiveIntegerField(_("last HTTP status"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event_id"], name="webhook_delivery_event_once"),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="webhook_delivery_due_idx",
                         condition=models.Q(status="pending")),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.endpoint_id} ({self.status})"
