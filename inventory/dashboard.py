"""The staff dashboard: its page (live stock by location, feed, counters, per-SKU chart) and the feed's last events."""
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import render
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory.codes import code_normalise
from inventory.models import Location, StockMovement
from inventory.selectors import (
    categories_list,
    client_location_codes,
    location_codes_split,
    locations_for_client,
    locations_for_query,
    movement_recent,
)
from reservations.models import ReservationStatus
from reservations.selectors import reservation_recent_per_status
from reservations.services import reservation_event

DASHBOARD_EVENTS_MAX = 100  # the feed keeps at most this many lines


def _strings() -> dict[str, str]:
    """Texts the page's script shows, translated here so one catalogue serves template and script."""
    return {
        "live": _("Live"),
        "connecting": _("Connecting…"),
        "syncing": _("Synchronising…"),
        "reconnecting": _("Reconnecting in %(seconds)s s…"),
        "interrupted": _("Reconnecting… (live updates interrupted)"),
        "offline": _("Offline"),
        "out": _("Out of stock"),
        "low": _("Low stock"),
        "reservation.created": _("Reservation created"),
        "reservation.confirmed": _("Reservation confirmed"),
        "reservation.released": _("Reservation released"),
        "reservation.expired": _("Reservation expired"),
        "order.received": _("Order received"),
        "order.processed": _("Order processed (sale)"),
        "order.failed": _("Order failed"),
        "alert.raised": _("Alert raised"),
        "alert.resolved": _("Alert resolved"),
        "projection.risk_entered": _("Stockout risk"),
        "projection.risk_left": _("Stockout risk cleared"),
        "movement": _("Stock movement"),
        "movement.receipt": _("Receipt"),
        "movement.sale": _("Sale"),
        "movement.adjustment": _("Adjustment"),
        "movement.count": _("Count"),
        "movement.return": _("Return"),
        "units": _("units"),
        "chart_empty": _("Choose a product in the table to see its stock over time."),
        "projection": _("Projection"),
        "history": _("On hand"),
        "no_rows": _("No product matches."),
        "no_locations": _("No location is open to you."),
        "no_value": "—",
    }


def dashboard_locations_selected(*, places: list[Location], asked: str | None) -> tuple[list[str], list[str]]:
    """(the location codes the page shows, the asked codes it cannot) from ``?locations=``: the ones
    asked among ``places`` (those the user may see), ``all`` of them, or without a usable choice the
    default location, or every place when the user may not see the default one."""
    codes = [place.code for place in places]
    wanted = [code_normalise(c) for c in location_codes_split(asked)]
    if [c.casefold() for c in wanted] == ["all"]:
        return codes, []
    chosen = [c for c in dict.fromkeys(wanted) if c in codes]
    ignored = [c for c in dict.fromkeys(wanted) if c not in codes]
    if chosen:
        return chosen, ignored
    return ([settings.DEFAULT_LOCATION_CODE] if settings.DEFAULT_LOCATION_CODE in codes else codes), ignored


@staff_member_required
def dashboard(request):
    places = locations_for_client(client=request.user)
    selected, ignored = dashboard_locations_selected(places=places, asked=request.GET.get("locations"))
    config = {
        "wsPath": "/ws/stock/",
        "snapshotUrl": "/api/v1/stock/snapshot",
        "eventsUrl": "/dashboard/events?limit=50",
        "movementsUrl": "/api/v1/stock/__CODE__/movements",
        "projectionUrl": "/api/v1/projections/__CODE__/daily?days=28",
        "heartbeatSeconds": settings.WS_HEARTBEAT_SECONDS,
        "locations": [{"code": place.code, "name": place.name} for place in places],
        "selected": selected,
        "defaultLocation": settings.DEFAULT_LOCATION_CODE,
        "strings": _strings(),
    }
    return render(request, "dashboard/index.html", {
        "config": config, "categories": categories_list(), "locations": places, "selected": selected,
        "ignored": ignored})


def movement_event(movement: StockMovement) -> dict[str, Any]:
    """A ledger row as a feed line: the kind, the signed change and the units on hand after it."""
    return {
        "type": f"movement.{movement.kind}",
        "code": movement.product.code,
        "location": movement.location.code,
        "name": movement.product.name,
        "quantity": movement.quantity,
        "on_hand": movement.on_hand_after,
        "at": movement.created_at.isoformat(),
    }


def dashboard_events_recent(*, limit: int, location_ids: list[int] | None = None) -> list[dict[str, Any]]:
    """The last ``limit`` ledger movements and reservation events (created, then confirmed, released or
    expired when closed), newest first, in the shapes the live feed shows; at these locations only
    (a reservation with the lines it has there) or everywhere when None."""
    timed: list[tuple[datetime, int, dict[str, Any]]] = []
    for movement in movement_recent(limit=limit, location_ids=location_ids):
        timed.append((movement.created_at, 0, movement_event(movement)))
    for reservation in reservation_recent_per_status(limit=limit, location_ids=location_ids):
        lines = [line for line in reservation.lines.all() if location_ids is None or line.location_id in location_ids]
        if not lines:
            continue
        timed.append((reservation.created_at, 1, reservation_event("created", reservation, lines,
                                                                   at=reservation.created_at)))
        if reservation.status != ReservationStatus.ACTIVE and reservation.closed_at is not None:
            timed.append((reservation.closed_at, 2, reservation_event(reservation.status, reservation, lines,
                                                                      at=reservation.closed_at)))
    timed.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [event for _at, _order, event in timed[:limit]]


class DashboardEventsApi(APIView):
    """The feed's last events for a dashboard that just (re)loaded; staff signed in to the admin only."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [IsAdminUser]

    class FilterSerializer(serializers.Serializer):
        limit = serializers.IntegerField(required=False, default=50, min_value=1, max_value=DASHBOARD_EVENTS_MAX)
        locations = serializers.CharField(required=False, max_length=2000)

    @extend_schema(exclude=True)  # the page's own route, not part of the client API (no token opens it)
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return Response({"items": dashboard_events_recent(
            limit=filters.validated_data["limit"],
            location_ids=self._location_ids(request.user, filters.validated_data.get("locations")))})

    @staticmethod
    def _location_ids(user, asked: str | None) -> list[int] | None:
        """The asked locations (``all``: every one the user may see); without any, everywhere as before,
        except for staff limited to some locations, who see theirs."""
        places = locations_for_query(client=user, text=asked)
        if places is None and client_location_codes(user) is None:
            return None
        return [place.pk for place in (places if places is not None else locations_for_client(client=user))]
