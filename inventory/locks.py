"""Row locks for inventory: always taken in primary-key order so concurrent writers never deadlock."""
from collections.abc import Iterable
from functools import reduce
from operator import or_

from django.db.models import Q

from inventory.models import Stock, Transfer

StockKey = tuple[int, int]  # (product_id, location_id)


def stock_keys_q(keys: Iterable[StockKey]) -> Q:
    """A filter matching the Stock rows of these (product_id, location_id) pairs: one IN list per location."""
    by_location: dict[int, set[int]] = {}
    for product_id, location_id in keys:
        by_location.setdefault(location_id, set()).add(product_id)
    if not by_location:
        return Q(pk__in=[])
    return reduce(or_, (Q(location_id=location_id, product_id__in=sorted(product_ids))
                        for location_id, product_ids in sorted(by_location.items())))


def stocks_lock(*, keys: Iterable[StockKey]) -> list[Stock]:
    """Lock the Stock rows of these (product_id, location_id) pairs (pk order) and return them with
    their products and locations loaded. Pairs with no row yet are simply absent."""
    return list(
        Stock.objects.select_for_update(of=("self",))
        .select_related("product", "location")
        .filter(stock_keys_q(set(keys)))
        .order_by("pk")
    )


def transfer_lock(*, transfer_id: int) -> Transfer | None:
    """Lock one transfer (product and both locations loaded); None when there is none. A transfer is
    locked before the Stock rows it moves."""
    rows = list(Transfer.objects.select_for_update(of=("self",)).select_related("product", "source", "destination")
                .filter(pk=transfer_id))
    return rows[0] if rows else None
