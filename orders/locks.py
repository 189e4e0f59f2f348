"""Row locks for orders: the order row first, then (via reservations) stock, and the invoice counter last."""
from uuid import UUID

from orders.models import InvoiceSeries, Order


def order_lock(*, order_id: UUID) -> Order | None:
    rows = list(Order.objects.select_for_update(of=("self",)).filter(pk=order_id))
    return rows[0] if rows else None


def orders_lock(*, order_ids: list[UUID]) -> list[Order]:
    return list(Order.objects.select_for_update(of=("self",)).filter(pk__in=sorted(set(order_ids))).order_by("pk"))


def invoice_series_lock(*, series: str) -> InvoiceSeries:
    """Lock the series counter, creating it at zero the first time (a concurrent creator is harmless)."""
    InvoiceSeries.objects.bulk_create([InvoiceSeries(series=series)], ignore_conflicts=True)
    return list(InvoiceSeries.objects.select_for_update(of=("self",)).filter(pk=series))[0]
