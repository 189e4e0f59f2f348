"""Reads for projections: summaries by code, the ruptures list, daily rows, stats and planned movements."""
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, F, Min, Q, QuerySet

from core.errors import ValidationFailed
from inventory.codes import code_normalise
from inventory.models import Product
from inventory.selectors import product_resolve, products_resolve_many
from projections.models import PlannedMovement, PlannedStatus, ProjectionSummary


def _today() -> date:
    from projections.services import projection_today

    return projection_today()


def summaries() -> QuerySet[ProjectionSummary]:
    return ProjectionSummary.objects.select_related("product", "product__stock")


def summary_is_stale(summary: ProjectionSummary, *, today: date | None = None) -> bool:
    """Stale: never computed, computed for an earlier day, or its inputs changed since (versions, threshold)."""
    if summary.as_of is None or summary.computed_at is None or summary.as_of < (today or _today()):
        return True
    stock = getattr(summary.product, "stock", None)
    if stock is None or summary.source_version != stock.version + summary.plan_version:
        return True
    # A threshold edit does not bump any version, but changes the first day below it.
    return summary.threshold != summary.product.low_stock_threshold


def projection_find(*, code: str) -> tuple[Product, ProjectionSummary | None]:
    """The product a code names (aliases resolve) and its summary, None if it was never computed."""
    normalised = code_normalise(code)
    summary = summaries().filter(product__code=normalised).first()
    if summary is not None and summary.computed_at is not None:
        return summary.product, summary
    product = product_resolve(code=normalised)
    summary = summaries().filter(product=product, computed_at__isnull=False).first()
    return product, summary


def projections_for_codes(*, codes: Iterable[str]) -> tuple[dict[str, Product], dict[int, ProjectionSummary], list[str]]:
    """({asked code: product}, {product_id: computed summary}, [unknown codes]), in asked order."""
    found, unknown = products_resolve_many(codes=codes)
    product_ids = {p.pk for p in found.values()}
    by_product = {s.product_id: s for s in summaries().filter(product_id__in=product_ids, computed_at__isnull=False)}
    return found, by_product, unknown


def projection_ruptures(*, days: int = 7) -> QuerySet[ProjectionSummary]:
    """Summaries with a stockout within ``days`` days from today, soonest first, product (and stock) loaded."""
    limit = _today() + timedelta(days=days)
    return (
        summaries().filter(stockout_date__isnull=False, stockout_date__lt=limit, product__active=True)
        .order_by("stockout_date", "product_id")
    )


def projection_daily(*, summary: ProjectionSummary, days: int) -> list[dict[str, Any]]:
    """The first ``days`` daily rows; beyond the stored horizon they are computed on the fly, not stored."""
    if days > summary.horizon_days or summary.as_of is None:
        from projections.services import projection_compute_rows

        rows = projection_compute_rows(product_ids=[summary.product_id], horizon=days)
        if not rows:
            return []
        row = rows[0]
        start, inbound, outbound, balance = _today(), row["daily_inbound"], row["daily_outbound"], row["daily_balance"]
        late = row["late"]
    else:
        start, inbound, outbound, balance = (summary.as_of, summary.daily_inbound, summary.daily_outbound,
                                             summary.daily_balance)
        late = summary.late_movements
    out = []
    for n in range(min(days, len(balance))):
        out.append({
            "date": (start + timedelta(days=n)).isoformat(),
            "inbound": inbound[n],
            "outbound": outbound[n],
            "balance": balance[n],
            "late": bool(late) and n == 0,
        })
    return out


def projection_stats() -> dict[str, Any]:
    today = _today()
    risk_limit = today + timedelta(days=settings.PROJECTION_RISK_DAYS)
    stale = (
        Q(as_of__isnull=True) | Q(as_of__lt=today)
        | ~Q(source_version=F("product__stock__version") + F("plan_version"))
        | ~Q(threshold=F("product__low_stock_threshold"))
    )
    totals = ProjectionSummary.objects.aggregate(
        products=Count("pk"),
        at_risk=Count("pk", filter=Q(stockout_date__isnull=False, stockout_date__lt=risk_limit)),
        stale=Count("pk", filter=stale),
        oldest=Min("computed_at"),
    )
    without_row = Product.objects.filter(stock__isnull=False, projection__isnull=True).count()
    return {
        "products": totals["products"] + without_row,
        "at_risk_7d": totals["at_risk"],
        "stale_rows": totals["stale"] + without_row,
        "oldest_computed_at": totals["oldest"],
    }


def planned_movement_list(
    *,
    code: str | None = None,
    source: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> QuerySet[PlannedMovement]:
    qs = PlannedMovement.objects.select_related("product").order_by("date", "id")
    if code:
        qs = qs.filter(product=product_resolve(code=code))
    if source:
        qs = qs.filter(source=source)
    if status:
        if status not in PlannedStatus.values:
            raise ValidationFailed(f"status must be one of {PlannedStatus.values}.", details={"status": status})
        qs = qs.filter(status=status)
    if kind:
        qs = qs.filter(kind=kind)
    if date_from:
        qs = qs.filter(date__gte=date_from)
    if date_to:
        qs = qs.filter(date__lte=date_to)
    return qs
