"""Writes for orders: accept (in the request's transaction), process (stock sale + invoice number), fail, retry, sweep."""
import logging
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.db import atomic_with_retry
from core.errors import Conflict, Gone, NotFound, ValidationFailed
from core.idempotency import idempotency_key_clean, idempotent_first, request_fingerprint
from core.metrics import PIPELINE_GAVE_UP
from core.models import ApiClient
from core.realtime import realtime_publish
from orders.locks import invoice_series_lock, order_lock, orders_lock
from orders.models import Order, OrderLine, OrderStatus, OrderStep
from orders.selectors import orders_stuck
from reservations.locks import reservation_lock
from reservations.models import Reservation, ReservationLine, ReservationStatus
from reservations.services import reservation_confirm, reservation_create, reservation_extend
from webhooks.services import webhook_events_enqueue

logger = logging.getLogger(__name__)


def order_event(kind: str, order: Order, lines: list[OrderLine], *, at: datetime) -> dict[str, Any]:
    """A dashboard feed event (no customer data)."""
    event = {
        "type": f"order.{kind}",
        "at": at.isoformat(),
        "order_id": str(order.pk),
        "status": order.status,
        "lines": [{"code": line.product.code, "location": line.location.code, "quantity": line.quantity}
                  for line in lines],
    }
    if order.invoice_number is not None:
        event["invoice"] = f"{order.invoice_series}-{order.invoice_number}"
    if order.failure_reason:
        event["reason"] = order.failure_reason
    return event


def _order_queue(order_ids: list[UUID]) -> None:
    from orders.tasks import order_process_task

    for order_id in order_ids:
        try:
            order_process_task.delay(str(order_id))
        except Exception:
            # The order row is safe in PostgreSQL; the beat sweep queues it again.
            logger.exception("order task could not be queued", extra={"order_id": str(order_id)})


def _lines_of(order: Order) -> list[OrderLine]:
    return list(order.lines.select_related("product", "location").order_by("product__code", "location__code"))


def _hold_while_queued(reservation: Reservation, client: ApiClient | None) -> None:
    """Keep the units held while the order waits for a worker (which may be offline for a while)."""
    limit = reservation.created_at + timedelta(seconds=settings.RESERVATION_MAX_LIFETIME_SECONDS)
    wanted = min(settings.ORDER_RESERVATION_HOLD_SECONDS, settings.RESERVATION_MAX_TTL_SECONDS,
                 int((limit - timezone.now()).total_seconds()) - 1)
    if wanted >= settings.RESERVATION_MIN_TTL_SECONDS:
        reservation_extend(reservation_id=reservation.pk, client=client, ttl=timedelta(seconds=wanted))


@atomic_with_retry()
def order_create(*, client: ApiClient | None, reservation_id: object = None, lines: list[dict] | None = None,
                 idempotency_key: str | None = None, reference: str = "", scope: object = None,
                 location: str | None = None, locations: list[str] | None = None,
                 allow_split: bool = False) -> Order:
    """Accept an order for an existing reservation, or reserve ``lines`` and order them in one step
    (``location``, ``locations`` and ``allow_split`` place them as reservation_create does).

    The order row is written in the caller's transaction with status ``received``; processing is
    queued after commit. With an Idempotency-Key the same request gives back the same order
    (``replayed`` is set); the same key with another body raises Unprocessable. ``scope``: the staff
    user acting (core.auth.request_location_scope), held to their locations.
    """
    if (reservation_id is None) == (lines is None):
        raise ValidationFailed(_("Send either reservation_id or lines."), details={"body": "reservation_id xor lines"})
    reference = (reference or "").strip()
    if len(reference) > 128:
        raise ValidationFailed(_("reference is at most 128 characters."), details={"reference": "too long"})
    # What the order asked of placement; absent, a body from before locations keeps its fingerprint below.
    placement = {name: value for name, value in
                 (("location", location), ("locations", locations), ("allow_split", allow_split)) if value}
    if reservation_id is not None and placement:
        # The reservation's lines already have their locations.
        raise ValidationFailed(_("location, locations and allow_split go with lines, not with reservation_id."),
                               details=placement)
    key = idempotency_key_clean(idempotency_key)
    fingerprint = request_fingerprint(
        {"reservation_id": reservation_id, "lines": lines, "reference": reference, **placement}) if key else ""
    if key:
        replay = idempotent_first(model=Order, client=client, key=key, fingerprint=fingerprint, kind="order")
        if replay is not None:
            return replay

    if lines is not None:
        reservation = reservation_create(client=client, lines=lines, reference=reference, scope=scope,
                                         location=location, locations=locations, allow_split=allow_split)
    else:
        try:
            rid = reservation_id if isinstance(reservation_id, UUID) else UUID(str(reservation_id))
        except ValueError:
            raise NotFound(_("No such reservation."), details={"reservation_id": str(reservation_id)}) from None
        reservation = reservation_lock(reservation_id=rid, client=client, scope=scope)
        if reservation is None:
            raise NotFound(_("No such reservation."), details={"reservation_id": str(reservation_id)})
        if Order.objects.filter(reservation=reservation).exists():
            raise Conflict(_("This reservation already has an order."),
                           details={"reservation_id": str(rid), "order_id": str(reservation.order.pk)})
        if reservation.status == ReservationStatus.RELEASED:
            raise Conflict(_("This reservation was released."), details={"reservation_id": str(rid)})
        if reservation.status == ReservationStatus.EXPIRED or (
                reservation.status == ReservationStatus.ACTIVE and reservation.expires_at <= timezone.now()):
            raise Gone(_("This reservation has expired."), details={"reservation_id": str(rid)})
    if reservation.status == ReservationStatus.ACTIVE:
        _hold_while_queued(reservation, client)

    now = timezone.now()
    order = Order.objects.create(client=client, reservation=reservation, reference=reference or reservation.reference,
                                 idempotency_key=key, request_fingerprint=fingerprint, queued_at=now)
    order_lines = OrderLine.objects.bulk_create(
        [OrderLine(order=order, product=line.product, location=line.location, quantity=line.quantity)
         for line in ReservationLine.objects.select_related("product", "location").filter(reservation=reservation)]
    )
    OrderStep.objects.create(order=order, step="received", detail=f"reservation {reservation.pk}")
    order.replayed = False
    transaction.on_commit(partial(_order_queue, [order.pk]))
    transaction.on_commit(partial(realtime_publish, [order_event("received", order, order_lines, at=now)]))
    return order


def _fail(order: Order, reason: str, *, now: datetime) -> None:
    order.status = OrderStatus.FAILED
    order.failure_reason = reason[:2000]
    order.save(update_fields=["status", "failure_reason", "updated_at"])
    OrderStep.objects.create(order=order, step="failed", detail=reason[:500])
    transaction.on_commit(PIPELINE_GAVE_UP.labels("orders").inc)
    transaction.on_commit(partial(realtime_publish, [order_event("failed", order, _lines_of(order), at=now)]))


@atomic_with_retry()
def order_process(*, order_id: UUID) -> Order | None:
    """Confirm the stock (sale ledger rows), take the next invoice number, mark processed. Idempotent.

    All steps share one transaction, so a worker killed half-way leaves nothing behind and the next
    run starts clean: each order is processed exactly once. The invoice counter is locked last, held
    only until commit, so numbers are gapless. A rule that says no (reservation expired or
    released) fails the order with the reason; other errors propagate to be retried.
    """
    order = order_lock(order_id=order_id)
    if order is None or order.status != OrderStatus.RECEIVED:
        return order
    now = timezone.now()
    try:
        reservation = reservation_confirm(reservation_id=order.reservation_id, client=None,
                                          actor=f"order:{order.pk}")
    except (Gone, Conflict, NotFound) as exc:
        _fail(order, f"{exc.code}: {exc.message}", now=now)
        return order
    OrderStep.objects.create(order=order, step="stock_confirmed", detail="sale recorded in the ledger")

    counter = invoice_series_lock(series=settings.ORDER_INVOICE_SERIES)
    counter.last_number += 1
    counter.save(update_fields=["last_number"])
    order.invoice_series, order.invoice_number = counter.series, counter.last_number
    OrderStep.objects.create(order=order, step="invoiced", detail=f"{counter.series}-{counter.last_number}")

    order.status = OrderStatus.PROCESSED
    order.processed_at = now
    order.failure_reason = ""
    order.save(update_fields=["status", "invoice_series", "invoice_number", "processed_at", "failure_reason",
                              "updated_at"])
    OrderStep.objects.create(order=order, step="processed")
    lines = _lines_of(order)
    event = order_event("processed", order, lines, at=now)
    webhook_events_enqueue(events=[
        {"type": "reservation.confirmed", "key": str(reservation.pk),
         "data": {"type": "reservation.confirmed", "reservation_id": str(reservation.pk), "at": now.isoformat(),
                  "lines": event["lines"]}},
        {"type": "order.processed", "key": str(order.pk), "data": event | {"reference": order.reference}},
    ])
    transaction.on_commit(partial(realtime_publish, [event]))
    return order


@transaction.atomic
def order_fail(*, order_id: UUID, reason: str) -> Order | None:
    """Give up on an order after its retries: status ``failed`` with the reason (the admin can retry it)."""
    order = order_lock(order_id=order_id)
    if order is None or order.status != OrderStatus.RECEIVED:
        return order
    _fail(order, reason, now=timezone.now())
    return order


@transaction.atomic
def orders_retry(*, order_ids: list[UUID], actor: str = "") -> int:
    """Put failed orders back to ``received`` and queue them (the admin's retry action)."""
    now = timezone.now()
    retried = []
    for order in orders_lock(order_ids=order_ids):
        if order.status != OrderStatus.FAILED:
            continue
        order.status = OrderStatus.RECEIVED
        order.queued_at = now
        order.save(update_fields=["status", "queued_at", "updated_at"])
        OrderStep.objects.create(order=order, step="retried", detail=actor[:500])
        retried.append(order.pk)
    transaction.on_commit(partial(_order_queue, retried))
    return len(retried)


@transaction.atomic
def orders_requeue_stuck(*, older_than: timedelta | None = None, limit: int = 500) -> list[UUID]:
    """Queue again the orders still ``received`` after a while: their task was lost (broker restart,
    worker killed before acking). A duplicate task is harmless: processing is idempotent."""
    age = older_than if older_than is not None else timedelta(seconds=settings.ORDER_REQUEUE_AFTER_SECONDS)
    now = timezone.now()
    ids = orders_stuck(queued_before=now - age, limit=limit)
    if not ids:
        return []
    Order.objects.filter(pk__in=ids, status=OrderStatus.RECEIVED).update(queued_at=now)
    OrderStep.objects.bulk_create([OrderStep(order_id=pk, step="requeued") for pk in ids])
    transaction.on_commit(partial(_order_queue, ids))
    return ids
