"""A redis-server of the test's own on a free port, which the test may stop and start again (never the shared one)."""
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis


class OwnRedis:
    """Started again on the same port, so servers configured with ``url`` find it again by themselves."""

    def __init__(self, workdir: Path):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    def start(self) -> "OwnRedis":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--maxmemory-policy", "noeviction"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    client.ping()
                    return self
                except redis.ConnectionError:
                    assert self.process.poll() is None, "redis-server exited at start"
                    assert time.monotonic() < deadline, "redis-server did not answer within 10 s"
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        """As a crash: SIGKILL, every connection cut at once, nothing kept."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None
