"""Row locks for reservations: a reservation row is always locked before the Stock rows it holds."""
from datetime import datetime
from uuid import UUID

from core.models import ApiClient
from inventory.selectors import scope_location_codes
from reservations.models import Reservation


def reservation_lock(*, reservation_id: UUID, client: ApiClient | None, scope: object = None) -> Reservation | None:
    """Lock one reservation (only the client's own unless client is None, and only within the scope's
    locations, see inventory.selectors.scope_location_codes); None when there is none to see."""
    qs = Reservation.objects.select_for_update(of=("self",)).filter(pk=reservation_id)
    if client is not None:
        qs = qs.filter(client=client)
    qs = qs.within_locations(scope_location_codes(scope=scope, client=client))
    rows = list(qs)
    return rows[0] if rows else None


def reservations_due_lock(*, now: datetime, limit: int) -> list[Reservation]:
    """Lock up to ``limit`` due active reservations, skipping rows another transaction holds (pk order)."""
    return list(
        Reservation.objects.due(now=now)
        .select_for_update(of=("self",), skip_locked=True)
        .order_by("pk")[:limit]
    )
