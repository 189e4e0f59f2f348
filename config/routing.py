"""WebSocket URL routes, gathered from the apps that serve sockets."""
from inventory.routing import websocket_urlpatterns as inventory_websocket_urlpatterns

websocket_urlpatterns: list = [*inventory_websocket_urlpatterns]
