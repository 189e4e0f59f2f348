"""Settings read from the environment: the channel layer is one of the two measured, or the process refuses to start."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from inventory.tests.test_dashboard_browser import static_root  # noqa: F401  (fixture: the admin's static files)

ROOT = Path(__file__).resolve().parents[2]


def _channel_layer_backend(value: str) -> subprocess.CompletedProcess:
    code = "from django.conf import settings; print(settings.CHANNEL_LAYERS['default']['BACKEND'])"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "CHANNEL_LAYER_BACKEND": value}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("value", "backend"), [
    ("pubsub", "channels_redis.pubsub.RedisPubSubChannelLayer"),
    ("core", "channels_redis.core.RedisChannelLayer"),
])
def test_channel_layer_backend_picks_the_layer(value, backend):
    result = _channel_layer_backend(value)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == backend


def test_an_unknown_channel_layer_backend_stops_the_process_with_a_clear_error():
    result = _channel_layer_backend("kafka")

    assert result.returncode != 0
    assert "CHANNEL_LAYER_BACKEND must be 'pubsub' or 'core', not 'kafka'" in result.stderr


# Production settings: `make run` serves plain http on 127.0.0.1; behind a TLS proxy the documented
# environment (README, "Security") turns on every HTTPS-only setting and `check --deploy` is silent.
TLS_PROXY_ENV = {"SECURE_HTTPS": "true", "SECURE_HSTS_PRELOAD": "true", "TRUSTED_PROXY_COUNT": "1",
                 "ALLOWED_HOSTS": "stock.example.com,testserver"}


def _production(code: list[str] | str, **env: str) -> subprocess.CompletedProcess:
    """Run manage.py arguments, or Python code after django.setup(), with the production settings."""
    base = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.production", "LOG_LEVEL": "WARNING",
            "SECRET_KEY": "k7Vq-0cJ2mN9xR4tW8yB1eH6uL3pZ5sD-gF0aQ7iO2vK9nM4jC8bX1wE6rT3yU5h"}
    for name in ("SECURE_HTTPS", "SECURE_HSTS_PRELOAD", "TRUSTED_PROXY_COUNT", "ALLOWED_HOSTS"):
        base.pop(name, None)
    if isinstance(code, list):
        command = [sys.executable, "manage.py", *code]
    else:
        command = [sys.executable, "-c", "import django; django.setup()\n" + code]
    return subprocess.run(command, cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=120)


def test_production_settings_behind_a_tls_proxy_pass_check_deploy_without_a_warning():
    result = _production(["check", "--deploy", "--fail-level", "WARNING"], **TLS_PROXY_ENV)

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_settings_as_make_run_leaves_them_serve_the_admin_over_plain_http(static_root):
    code = """
from django.test import Client
page = Client().get("/admin/login/")
print(page.status_code, page.cookies["csrftoken"]["secure"] or "-", page.has_header("Strict-Transport-Security"))
"""
    result = _production(code, ALLOWED_HOSTS="testserver", STATIC_ROOT=str(static_root))

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["200", "-", "False"]


def test_production_settings_behind_a_tls_proxy_redirect_http_and_send_hsts_and_secure_cookies(static_root):
    code = """
from django.test import Client
http = Client().get("/admin/login/")
https = Client().get("/admin/login/", HTTP_X_FORWARDED_PROTO="https")
probe = Client().get("/healthz")
print(http.status_code, http["Location"])
print(https.status_code, https["Strict-Transport-Security"].replace(" ", ""), https.cookies["csrftoken"]["secure"])
print(probe.status_code)
"""
    result = _production(code, **TLS_PROXY_ENV, STATIC_ROOT=str(static_root))

    assert result.returncode == 0, result.stderr
    http, https, probe = result.stdout.splitlines()
    assert http == "301 https://testserver/admin/login/"
    assert https == "200 max-age=31536000;includeSubDomains;preload True"
    assert probe == "200"
