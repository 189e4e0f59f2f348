"""Row locks for projections: summary rows due for a fallback recompute (skipping rows another run holds) and
reorder suggestions being decided."""
from datetime import date

from django.db.models import Case, F, IntegerField, Q, Value, When

from inventory.selectors import default_stock
from projections.models import ProjectionSummary, ReorderSuggestion


def summaries_lock_due(*, limit: int, today: date) -> list[int]:
    """Lock up to ``limit`` summary rows, dirty or stale ones first, then the oldest computed; return their ids.

    SKIP LOCKED lets concurrent runs split the work instead of queueing on each other's rows.
    """
    due = (
        Q(as_of__isnull=True) | Q(as_of__lt=today)
        | ~Q(source_version=F("stock_here__version") + F("plan_version"))
        | ~Q(threshold=F("product__low_stock_threshold"))
    )
    rows = (
        ProjectionSummary.objects.select_for_update(of=("self",), skip_locked=True)
        .alias(stock_here=default_stock("product__"))
        .annotate(priority=Case(When(due, then=Value(0)), default=Value(1), output_field=IntegerField()))
        .order_by("priority", F("computed_at").asc(nulls_first=True), "pk")
        .values_list("pk", flat=True)[:limit]
    )
    return sorted(list(rows))


def suggestions_lock(*, ids: list[int]) -> list[ReorderSuggestion]:
    """Lock these reorder suggestions in pk order (product loaded); unknown ids are left out."""
    return list(ReorderSuggestion.objects.select_for_update(of=("self",)).select_related("product")
                .filter(pk__in=ids).order_by("pk"))
