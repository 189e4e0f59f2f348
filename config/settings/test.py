"""Settings for the test suite: real PostgreSQL and Redis, fast password hashing, isolated Redis keys."""
import os

from .base import *  # noqa: F401,F403
from .base import CELERY_BROKER_TRANSPORT_OPTIONS, CHANNEL_LAYERS, env

DEBUG = False
SECRET_KEY = "test-secret-key"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Each test run gets its own key prefixes so parallel runs on one Redis never meet.
_run = env("TEST_RUN_ID", default=str(os.getpid()))
CACHES["default"]["KEY_PREFIX"] = CACHES["security"]["KEY_PREFIX"] = f"test-{_run}"  # noqa: F405
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = f"test-{_run}.ws"
# And the Celery queues: runs on one Redis would otherwise take or purge each other's tasks.
CELERY_BROKER_TRANSPORT_OPTIONS = {**CELERY_BROKER_TRANSPORT_OPTIONS, "global_keyprefix": f"test-{_run}."}
# Tests change clients (scopes, active) between requests; core/tests cover the cache itself.
API_CLIENT_CACHE_SECONDS = 0
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"client": "100000/min"}  # noqa: F405
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
# Many tests send wrong tokens from 127.0.0.1; core/tests/test_security.py restores the shipped limit.
TOKEN_FAILURE_LIMIT = 1_000_000
