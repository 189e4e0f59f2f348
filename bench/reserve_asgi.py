"""The service's ASGI app with Django's HTTP handler running every request on the process's one sync thread.

Django's ASGIHandler gives each request a new thread (ThreadSensitiveContext). Under 64 concurrent
requests that is 64 threads per process fighting over the GIL and the connection pool, plus a
thread start per request. Here the sync part of every request runs on one thread per process,
one request after another, and the service scales with processes (scripts/serve.py).
"""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

from django.core.handlers.asgi import ASGIHandler  # noqa: E402

import config.asgi as site  # noqa: E402


class SerialASGIHandler(ASGIHandler):
    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        await self.handle(scope, receive, send)


site.application.application_mapping["http"] = SerialASGIHandler()
application = site.application
