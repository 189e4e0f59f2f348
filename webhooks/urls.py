"""URL routes of webhooks (full paths, included at the site root)."""
from django.urls import path

from webhooks import views

urlpatterns = [
    path("api/v1/webhooks/endpoints", views.WebhookEndpointListCreateApi.as_view(), name="webhook-endpoint-list"),
    path("api/v1/webhooks/endpoints/<int:endpoint_id>", views.WebhookEndpointDetailApi.as_view(),
         name="webhook-endpoint-detail"),
    path("api/v1/webhooks/endpoints/<int:endpoint_id>/rotate-secret", views.WebhookEndpointSecretRotateApi.as_view(),
         name="webhook-endpoint-rotate-secret"),
    path("api/v1/webhooks/deliveries", views.WebhookDeliveryListApi.as_view(), name="webhook-delivery-list"),
    path("api/v1/webhooks/deliveries/redeliver", views.WebhookDeliveryRedeliverApi.as_view(),
         name="webhook-delivery-redeliver"),
]
