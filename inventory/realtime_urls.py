"""URL routes of live stock: the WebSocket ticket, the staff dashboard and its language switch."""
from django.urls import include, path

from inventory import dashboard, realtime_views

urlpatterns = [
    path("api/v1/ws-ticket", realtime_views.WsTicketApi.as_view(), name="ws-ticket"),
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    path("i18n/", include("django.conf.urls.i18n")),
]
