"""URL routes of live stock: the WebSocket ticket, the staff dashboard, its last events and its language switch."""
from django.urls import include, path

from inventory import dashboard, realtime_views

urlpatterns = [
    path("api/v1/ws-ticket", realtime_views.WsTicketApi.as_view(), name="ws-ticket"),
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    path("dashboard/events", dashboard.DashboardEventsApi.as_view(), name="dashboard-events"),
    path("i18n/", include("django.conf.urls.i18n")),
]
