"""The staff dashboard page: live stock table, event feed, counters and a per-SKU chart."""
from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import render
from django.utils.translation import gettext as _

from inventory.selectors import categories_list


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
        "units": _("units"),
        "chart_empty": _("Choose a product in the table to see its stock over time."),
        "projection": _("Projection"),
        "history": _("On hand"),
        "no_rows": _("No product matches."),
    }


@staff_member_required
def dashboard(request):
    config = {
        "wsPath": "/ws/stock/",
        "snapshotUrl": "/api/v1/stock/snapshot",
        "movementsUrl": "/api/v1/stock/__CODE__/movements",
        "projectionUrl": "/api/v1/projections/__CODE__/daily?days=28",
        "heartbeatSeconds": settings.WS_HEARTBEAT_SECONDS,
        "strings": _strings(),
    }
    return render(request, "dashboard/index.html", {"config": config, "categories": categories_list()})
