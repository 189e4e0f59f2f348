"""Reads for reservations: one client's reservations, their effective status and the reserved-counter audit."""
from datetime import datetime
from uuid import UUID

from django.db.models import Prefetch, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import NotFound
from core.models import ApiClient
from inventory.selectors import scope_location_codes, stock_counter_drift
from reservations.models import Reservation, ReservationLine, ReservationStatus


def reservation_effective_status(reservation: Reservation, *, now: datetime | None = None) -> str:
    """A due active reservation is expired for every reader, whether or not the sweep has run."""
    if reservation.status == ReservationStatus.ACTIVE and reservation.expires_at <= (now or timezone.now()):
        return ReservationStatus.EXPIRED
    return reservation.status


def reservation_id_parse(value: object) -> UUID:
    """A reservation id; anything that is not a UUID names no reservation (NotFound, like another's id)."""
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise NotFound(_("No such reservation."), details={"id": str(value)}) from None


def _with_lines(qs: QuerySet[Reservation]) -> QuerySet[Reservation]:
    return qs.prefetch_related(
        Prefetch("lines", queryset=ReservationLine.objects.select_related("product", "location")
                 .order_by("product__code", "location__code"))
    )


def reservation_get(*, reservation_id: UUID | str, client: ApiClient | None, scope: object = None) -> Reservation:
    """The reservation with its lines; NotFound when it does not exist, belongs to another client, or has
    a line at a location the scope may not see."""
    qs = Reservation.objects.filter(pk=reservation_id_parse(reservation_id))
    if client is not None:
        qs = qs.filter(client=client)
    reservation = _with_lines(qs.within_locations(scope_location_codes(scope=scope, client=client))).first()
    if reservation is None:
        raise NotFound(_("No such reservation."), details={"id": str(reservation_id)})
    return reservation


def reservation_list(*, client: ApiClient | None, status: str | None = None, scope: object = None) -> QuerySet[Reservation]:
    """Newest first. ``status`` is the effective one: "active" leaves out due ones, "expired" includes them."""
    qs = Reservation.objects.within_locations(scope_location_codes(scope=scope, client=client))
    if client is not None:
        qs = qs.filter(client=client)
    now = timezone.now()
    if status == ReservationStatus.ACTIVE:
        qs = qs.filter(status=ReservationStatus.ACTIVE, expires_at__gt=now)
    elif status == ReservationStatus.EXPIRED:
        qs = qs.filter(status=ReservationStatus.EXPIRED) | qs.filter(status=ReservationStatus.ACTIVE,
                                                                     expires_at__lte=now)
    elif status:
        qs = qs.filter(status=status)
    return _with_lines(qs.order_by("-created_at"))


def reservation_recent_per_status(*, limit: int, location_ids: list[int] | None = None) -> list[Reservation]:
    """The newest ``limit`` reservations of each status with a line at these locations (None: anywhere),
    lines and products loaded: the dashboard's last reservation events. One index range per status
    (status, -created_at), so the table is never sorted whole; a reservation created long before the
    newest ``limit`` of its status is not among them."""
    found: list[Reservation] = []
    at = Reservation.objects.touching_location_ids(location_ids)
    for status in ReservationStatus.values:
        found.extend(_with_lines(at.filter(status=status).order_by("-created_at"))[:limit])
    return found


def reserved_drift() -> list[dict]:
    """Stock rows whose reserved differs from the sum of their active reservation lines (at their location)."""
    totals = {
        (pid, lid): total for pid, lid, total in
        ReservationLine.objects.filter(reservation__status=ReservationStatus.ACTIVE)
        .values("product_id", "location_id").annotate(total=Sum("quantity"))
        .values_list("product_id", "location_id", "total")
    }
    return [{"code": code, "location": loc_code, "reserved": reserved, "active_lines": total}
            for code, loc_code, reserved, total in stock_counter_drift(counter="reserved", totals=totals)]
