"""Reads for orders: one order with its lines and steps, orders waiting too long in ``received``, the backlog."""
from datetime import datetime
from uuid import UUID

from django.db.models import Count, Min
from django.utils.translation import gettext as _

from core.errors import NotFound
from core.models import ApiClient
from core.pipelines import Backlog
from inventory.selectors import scope_location_codes
from orders.models import Order, OrderStatus


def order_get(*, order_id: object, client: ApiClient | None, scope: object = None) -> Order:
    """The order (only the client's own unless client is None, and for a staff scope only one whose every
    line is at their locations) with lines and steps loaded; NotFound otherwise."""
    try:
        pk = order_id if isinstance(order_id, UUID) else UUID(str(order_id))
    except ValueError:
        raise NotFound(_("No such order."), details={"id": str(order_id)}) from None
    qs = Order.objects.prefetch_related("lines__product", "lines__location", "steps").filter(pk=pk)
    if client is not None:
        qs = qs.filter(client=client)
    order = qs.within_locations(scope_location_codes(scope=scope, client=client)).first()
    if order is None:
        raise NotFound(_("No such order."), details={"id": str(order_id)})
    return order


def orders_stuck(*, queued_before: datetime, limit: int = 500) -> list[UUID]:
    return list(
        Order.objects.filter(status=OrderStatus.RECEIVED, queued_at__lt=queued_before)
        .order_by("queued_at").values_list("id", flat=True)[:limit]
    )


def orders_backlog(*, now: datetime) -> Backlog:
    """Orders accepted and not yet processed (``received``), and when the longest-waiting one was last queued."""
    figures = Order.objects.filter(status=OrderStatus.RECEIVED).aggregate(
        waiting=Count("pk"), oldest_due_at=Min("queued_at"))
    return Backlog(**figures)
