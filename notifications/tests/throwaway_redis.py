"""A redis-server of a test's own on a free port, and the Celery app pointed at it: outages caused for real,
without touching the shared Redis."""
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager

import redis

from config.celery_app import app as celery_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ThrowawayRedis:
    """``start`` and ``stop`` as often as a test needs; always on the same port."""

    def __init__(self):
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.dir = tempfile.mkdtemp(prefix="redis-test-")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _pools_reset() -> None:
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@contextmanager
def celery_broker(url: str):
    """This process's Celery app (producers and in-process workers) uses ``url`` as its broker meanwhile."""
    previous = celery_app.conf.broker_url
    celery_app.conf.broker_url = url
    _pools_reset()
    try:
        yield
    finally:
        celery_app.conf.broker_url = previous
        _pools_reset()
