"""Page-number pagination shared by every list endpoint."""
from rest_framework.pagination import PageNumberPagination


class StandardPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


def paginated_response(*, request, queryset, serializer_class, view, context: dict | None = None):
    """Page a queryset with the view's declared paginator (the one the schema documents) and serialize the page."""
    paginator = getattr(view, "pagination_class", None) or StandardPagination
    paginator = paginator()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True, context=context or {}).data)
