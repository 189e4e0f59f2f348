"""Admin list pieces for tables that grow without bound (ledger, reservations, orders, deliveries, alerts)."""
from django.core.paginator import Paginator
from django.utils.functional import cached_property


class CappedCountPaginator(Paginator):
    """Counts at most ``cap`` rows: on a table of millions of rows an exact count reads every one (seconds
    per page), while staff page through the newest rows and narrow the rest with filters. ``capped`` says
    the list holds more than ``count`` rows; its pages end at ``cap`` (templates/admin/pagination.html
    says so)."""

    cap = 10_000

    @cached_property
    def _counted(self) -> int:
        return self.object_list[: self.cap + 1].count()

    @cached_property
    def count(self) -> int:
        return min(self._counted, self.cap)

    @cached_property
    def capped(self) -> bool:
        return self._counted > self.cap


class GrowingListAdminMixin:
    """A ModelAdmin list over a table that grows with every sale: one capped count, never a second full one
    (Django's "N total" beside a search or filter), and no date hierarchy (its year list is a DISTINCT over
    every row; a date filter in ``list_filter`` narrows by range instead)."""

    paginator = CappedCountPaginator
    show_full_result_count = False
    date_hierarchy = None
