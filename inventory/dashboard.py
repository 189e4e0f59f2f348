"""The staff dashboard: its page (live stock table, event feed, counters, per-SKU chart) and the feed's last events."""
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

from inventory.models import StockMovement
from inventory.selectors import categories_list, movement_recent
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
        "no_value": "—",
    }


@staff_member_required
def dashboard(request):
    config = {
        "wsPath": "/ws/stock/",
        "snapshotUrl": "/api/v1/stock/snapshot",
        "eventsUrl": "/dashboard/events?limit=50",
        "movementsUrl": "/api/v1/stock/__CODE__/movements",
        "projectionUrl": "/api/v1/projections/__CODE__/daily?days=28",
        "heartbeatSeconds": settings.WS_HEARTBEAT_SECONDS,
        "strings": _strings(),
    }
    return render(request, "dashboard/index.html", {"config": config, "categories": categories_list()})


def movement_event(movement: StockMovement) -> dict[str, Any]:
    """A ledger row as a feed line: the kind, the signed change and the units on hand after it."""
    return {
        "type": f"movement.{movement.kind}",
        "code": movement.product.code,
        "name": movement.product.name,
        "quantity": movement.quantity,
        "on_hand": movement.on_hand_after,
        "at": movement.created_at.isoformat(),
    }


def dashboard_events_recent(*, limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` ledger movements and reservation events (created, then confirmed, released or
    expired when closed), newest first, in the shapes the live feed shows."""
    timed: list[tuple[datetime, int, dict[str, Any]]] = []
    for movement in movement_recent(limit=limit):
        timed.append((movement.created_at, 0, movement_event(movement)))
    for reservation in reservation_recent_per_status(limit=limit):
        lines = list(reservation.lines.all())
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

    @extend_schema(exclude=True)  # the page's own route, not part of the client API (no token opens it)
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return Response({"items": dashboard_events_recent(limit=filters.validated_data["limit"])})
