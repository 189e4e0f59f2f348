"""URL routes of notifications (full paths, included at the site root)."""
from django.urls import path

from notifications.views import TelegramWebhookApi

urlpatterns = [
    path("telegram/webhook/", TelegramWebhookApi.as_view(), name="telegram-webhook"),
]
