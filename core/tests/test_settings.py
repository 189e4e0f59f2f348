"""Settings read from the environment: the channel layer is one of the two measured, or the process refuses to start."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
