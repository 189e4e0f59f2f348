"""WebSocket URL routes, gathered from the apps that serve sockets."""
websocket_urlpatterns: list = []
