"""URL routes of reservations (full paths, included at the site root)."""
from django.urls import path

from reservations import views

urlpatterns = [
    path("api/v1/reservations", views.ReservationListCreateApi.as_view(), name="reservation-list"),
    path("api/v1/reservations/<str:reservation_id>", views.ReservationDetailApi.as_view(), name="reservation-detail"),
    path("api/v1/reservations/<str:reservation_id>/confirm", views.ReservationConfirmApi.as_view(),
         name="reservation-confirm"),
    path("api/v1/reservations/<str:reservation_id>/release", views.ReservationReleaseApi.as_view(),
         name="reservation-release"),
    path("api/v1/reservations/<str:reservation_id>/extend", views.ReservationExtendApi.as_view(),
         name="reservation-extend"),
    path("stock/<str:sku>/reserve", views.StockReserveApi.as_view(), name="stock-reserve"),
    path("stock/confirm", views.StockConfirmApi.as_view(), name="stock-confirm"),
]
