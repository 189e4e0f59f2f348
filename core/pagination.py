"""Page-number pagination shared by every list endpoint."""
from rest_framework.pagination import PageNumberPagination


class StandardPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


class CountKnown:
    """Rows whose number is already known (a counter kept with the rows), so the paginator reads the page
    without counting them: a queryset, or anything that returns a page for a slice."""

    ordered = True

    def __init__(self, rows, count: int) -> None:
        self.rows, self._count = rows, count

    def count(self) -> int:
        return self._count

    def __getitem__(self, key):
        return self.rows[key]


def paginated_response(*, request, queryset, serializer_class, view, context: dict | None = None,
                       count: int | None = None):
    """Page a queryset with the view's declared paginator (the one the schema documents) and serialize the page;
    ``count``, when the caller knows the number of rows, spares the paginator its count query."""
    paginator = getattr(view, "pagination_class", None) or StandardPagination
    paginator = paginator()
    if count is not None:
        queryset = CountKnown(queryset, count)
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True, context=context or {}).data)
