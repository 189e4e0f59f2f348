"""WebSocket routes of inventory: the live stock stream under its English and its Portuguese name."""
from django.urls import re_path

from inventory.consumers import StockConsumer

websocket_urlpatterns = [
    re_path(r"^ws/stock/?$", StockConsumer.as_asgi(), name="ws-stock"),
    re_path(r"^ws/estoque/?$", StockConsumer.as_asgi(), name="ws-estoque"),
]
