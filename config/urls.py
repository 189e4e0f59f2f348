"""Site URLs: admin, API docs, operational endpoints and each app's routes (apps give full paths)."""
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core import views as core_views

handler404 = "core.errors.json_404"
handler500 = "core.errors.json_500"

urlpatterns = [
    path("", core_views.home, name="home"),
    path("admin/", admin.site.urls),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("metrics", core_views.metrics, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("", include("inventory.import_urls")),
    path("", include("inventory.urls")),
    path("", include("inventory.realtime_urls")),
    path("", include("reservations.urls")),
    path("", include("orders.urls")),
    path("", include("notifications.urls")),
    path("", include("projections.urls")),
    path("", include("webhooks.urls")),
    # Last: only a path no route above matched reaches it.
    re_path(r"^(?P<path>(?:api|stock|estoque)(?:/.*)?)$", core_views.api_path_other_slash,
            name="api-path-other-slash"),
]
