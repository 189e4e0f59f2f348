"""Row locks for projections: summary rows due for a fallback recompute (skipping rows another run holds) and
reorder suggestions being decided."""
from datetime import date

from django.db.models import Case, F, IntegerField, Q, Value, When

from projections.models import ProjectionSummary, ReorderSuggestion
from projections.selectors import summaries_with_stock


def summaries_lock_due(*, limit: int, today: date) -> list[tuple[int, int]]:
    """Lock up to ``limit`` summary rows, dirty or stale ones first, then the oldest computed; return their
    (product id, location id) pairs in pk order.

    SKIP LOCKED lets concurrent runs split the work instead of queueing on each other's rows.
    """
    due = (
        Q(as_of__isnull=True) | Q(as_of__lt=today)
        | ~Q(source_version=F("stock_here__version") + F("plan_version"))
        | ~Q(threshold=F("product__low_stock_threshold"))
    )
    rows = (
        summaries_with_stock(ProjectionSummary.objects.select_for_update(of=("self",), skip_locked=True))
        .annotate(priority=Case(When(due, then=Value(0)), default=Value(1), output_field=IntegerField()))
        .order_by("priority", F("computed_at").asc(nulls_first=True), "pk")
        .values_list("pk", "product_id", "location_id")[:limit]
    )
    return [(product_id, location_id) for _pk, product_id, location_id in sorted(list(rows))]


def suggestions_lock(*, ids: list[int]) -> list[ReorderSuggestion]:
    """Lock these reorder suggestions in pk order (product and location loaded); unknown ids are left out."""
    return list(ReorderSuggestion.objects.select_for_update(of=("self",)).select_related("product", "location")
                .filter(pk__in=ids).order_by("pk"))
