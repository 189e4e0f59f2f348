"""URL routes of orders (full paths, included at the site root)."""
from django.urls import path

from orders import views

urlpatterns = [
    path("api/v1/orders", views.OrderCreateApi.as_view(), name="order-create"),
    path("api/v1/orders/<str:order_id>", views.OrderDetailApi.as_view(), name="order-detail"),
]
