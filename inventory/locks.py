"""Row locks for inventory: always taken in primary-key order so concurrent writers never deadlock."""
from collections.abc import Iterable

from inventory.models import Stock


def stocks_lock(*, product_ids: Iterable[int]) -> list[Stock]:
    """Lock the Stock rows of these products (pk order) and return them with their products loaded."""
    ids = sorted(set(product_ids))
    return list(
        Stock.objects.select_for_update(of=("self",))
        .select_related("product")
        .filter(product_id__in=ids)
        .order_by("pk")
    )
