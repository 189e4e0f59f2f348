"""URL routes of projections (full paths, included at the site root)."""
from django.urls import path

from projections import views

urlpatterns = [
    path("api/v1/projections/query", views.ProjectionQueryApi.as_view(), name="projection-query"),
    path("api/v1/projections/ruptures", views.ProjectionRupturesApi.as_view(), name="projection-ruptures"),
    path("api/v1/projections/stats", views.ProjectionStatsApi.as_view(), name="projection-stats"),
    path("api/v1/projections/<str:code>", views.ProjectionDetailApi.as_view(), name="projection-detail"),
    path("api/v1/projections/<str:code>/daily", views.ProjectionDailyApi.as_view(), name="projection-daily"),
    path("api/v1/projections/<str:code>/recalculate", views.ProjectionRecalculateApi.as_view(),
         name="projection-recalculate"),
    path("api/v1/planned-movements", views.PlannedMovementListApi.as_view(), name="planned-movement-list"),
    path("api/v1/planned-movements/bulk", views.PlannedMovementBulkApi.as_view(), name="planned-movement-bulk"),
    path("api/v1/planned-movements/<int:pk>", views.PlannedMovementDetailApi.as_view(),
         name="planned-movement-detail"),
    path("api/v1/reorder-suggestions", views.ReorderSuggestionListApi.as_view(), name="reorder-suggestion-list"),
    path("api/v1/reorder-suggestions/export", views.ReorderSuggestionExportApi.as_view(),
         name="reorder-suggestion-export"),
    path("api/v1/reorder-suggestions/<int:pk>/order", views.ReorderSuggestionOrderApi.as_view(),
         name="reorder-suggestion-order"),
    path("api/v1/reorder-suggestions/<int:pk>/dismiss", views.ReorderSuggestionDismissApi.as_view(),
         name="reorder-suggestion-dismiss"),
]
