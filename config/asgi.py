"""ASGI entry point: one application for HTTP and WebSocket, served by Daphne."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
# Django must be set up before anything imports models (routing pulls in consumers).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from config.routing import websocket_urlpatterns  # noqa: E402
from core.fanout import DaphneFrameWriterMiddleware  # noqa: E402
from core.middleware import WebsocketDatabaseGuard  # noqa: E402
from reservations.fast_path import ReservationFastPath  # noqa: E402

application = ProtocolTypeRouter(
    {
        # One-code reservations skip Django's request cycle when plain; all else goes to Django.
        "http": ReservationFastPath(django_asgi_app),
        # Outermost, so it sees Daphne's own send: the fan-out writes batches straight to the connection.
        # Inside it, the guard that closes a connect with 4503 when PostgreSQL is unreachable (core/middleware.py).
        "websocket": DaphneFrameWriterMiddleware(WebsocketDatabaseGuard(
            AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        )),
    }
)

# Last, once everything above is loaded (core/serving.py says why).
from core.serving import daphne_form_parsing_off, heap_freeze  # noqa: E402

daphne_form_parsing_off()
heap_freeze()
