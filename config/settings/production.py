"""Production settings: secrets have no defaults, debug is off, HTTPS-only behaviour follows SECURE_HTTPS.

Behind a TLS-terminating proxy set ``SECURE_HTTPS=true`` (and ``SECURE_HSTS_PRELOAD=true`` once the
domain may go on the browsers' preload list): ``manage.py check --deploy`` then has nothing to say
(README, "Security"). Left unset, as ``make run`` leaves it, the service works over plain http.
"""
from .base import *  # noqa: F401,F403
from .base import env

DEBUG = False
SECRET_KEY = env("SECRET_KEY")
SECURE_HTTPS = env.bool("SECURE_HTTPS", default=False)
SESSION_COOKIE_SECURE = SECURE_HTTPS
CSRF_COOKIE_SECURE = SECURE_HTTPS
SECURE_SSL_REDIRECT = SECURE_HTTPS
# Probes that call the process directly over http (the Docker healthcheck, Prometheus) are not redirected.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
# Only right when the proxy sets X-Forwarded-Proto itself and drops the client's.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if SECURE_HTTPS else None
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 60 * 60 if SECURE_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=SECURE_HTTPS)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
