"""Throwaway servers for outage tests: a Redis of the test's own (killed, started again on its port), serve.py,
and a private PostgreSQL cluster with a migrated, seeded database."""
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis
import requests

from core.tests.pg_cluster import PrivateCluster, private_cluster

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ThrowawayRedis:
    """A redis-server nobody else uses (never the shared one): the test may kill it and start it again.

    Started again on the same port, so clients configured with ``url`` reconnect by themselves. ``extra``
    arguments come first on the command line, where redis-server wants a configuration file (a sentinel's).
    """

    def __init__(self, workdir: Path, port: int | None = None, extra: tuple[str, ...] = ()):
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.extra = extra
        self.process: subprocess.Popen | None = None

    def start(self) -> "ThrowawayRedis":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", *self.extra, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir), "--maxmemory-policy", "noeviction"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        try:
            while True:
                try:
                    client.ping()
                    return self
                except redis.ConnectionError:
                    assert self.process.poll() is None, "redis-server exited at start"
                    assert time.monotonic() < deadline, "redis-server did not answer within 10 s"
                    time.sleep(0.05)
        except BaseException:
            self.kill()  # one that never answered must not outlive the test either
            raise
        finally:
            client.close()

    def kill(self) -> None:
        """An outage as a crash gives it: SIGKILL, every connection cut at once."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def stop(self) -> None:
        """The same crash as ``kill``: where a test stops Redis and starts it again."""
        self.kill()

    def __enter__(self) -> "ThrowawayRedis":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()


def processes_stop(processes: list[subprocess.Popen], timeout: float = 20) -> None:
    """SIGTERM to each (started with start_new_session=True), then SIGKILL to the session of any still there."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: the process and its children
            process.wait()


def production_env_on_test_database(**overrides: str) -> dict[str, str]:
    """The environment of a server process the test starts: production settings on the test database."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.production", "SECRET_KEY": "outage-test",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "LOG_LEVEL": "WARNING", "ACCESS_LOG_LEVEL": "WARNING", **overrides}


class ServedApp:
    """scripts/serve.py on a free port, started by the test (it answers /healthz) and stopped by it."""

    def __init__(self, env: dict[str, str], log: Path, workers: int = 2):
        self.env, self.log_path, self.workers = env, log, workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> "ServedApp":
        log = self.log_path.open("wb")  # a file, not a pipe: nobody reads the log while it runs
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "serve.py"), "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", str(self.workers)],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        try:
            self._wait_answering()
        except BaseException:
            self.stop()  # a server that never answered must not outlive the test either
            raise
        return self

    def _wait_answering(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, self.log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "serve.py did not answer within 60 s"
            try:
                # A long timeout: a process still loading Django on a busy machine answers late, not never.
                if requests.get(self.url + "/healthz", timeout=20).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.1)

    def children(self) -> list[int]:
        """The pids of the Daphne processes serve.py runs now."""
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return sorted(int(pid) for pid in path.read_text().split())

    def stop(self) -> None:
        if self.process is not None:
            processes_stop([self.process])

    def __enter__(self) -> "ServedApp":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _processes() -> dict[int, tuple[int, str]]:
    """{pid: (parent pid, command line)} of every live process (zombies left out)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # After "pid (comm)": state, ppid, ...
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if fields[0] != "Z":
            found[int(entry.name)] = (int(fields[1]), cmdline)
    return found


def descendants(root: int) -> dict[int, tuple[int, str]]:
    """{pid: (parent pid, command line)} of every live process below ``root``."""
    processes, found, frontier = _processes(), {}, {root}
    while frontier:
        frontier = {pid for pid, (parent, _) in processes.items() if parent in frontier and pid not in found}
        found.update({pid: processes[pid] for pid in frontier})
    return found


def processes_kill(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def manage(env: dict[str, str], *args: str) -> str:
    """The output of ``manage.py`` run with ``env`` (a failure raises, with its output)."""
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True,
                          text=True, timeout=180).stdout


@dataclass
class PrivateDatabase:
    cluster: PrivateCluster
    url: str  # of the migrated, seeded database
    run: str  # the TEST_RUN_ID of the servers on it: their Redis keys are removed afterwards
    seeded: dict  # what the seed script printed


@contextlib.contextmanager
def private_database(name: str, seed: str) -> Iterator[PrivateDatabase]:
    """A private cluster with a ``stockpulse`` database, migrated and then seeded by ``seed`` (run by
    ``manage.py shell``; its last line of output is JSON); on the way out the Redis keys of its run id
    (the test run's id and ``name``) are deleted and the cluster removed."""
    from django.conf import settings

    run = f"{os.environ.get('TEST_RUN_ID', os.getpid())}-{name}"
    with private_cluster() as cluster:
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
            admin.execute("CREATE DATABASE stockpulse")
        url = cluster.url("stockpulse")
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": url, "TEST_RUN_ID": run}
        try:
            manage(env, "migrate", "-v", "0")
            seeded = json.loads(manage(env, "shell", "-c", seed).strip().splitlines()[-1])
            yield PrivateDatabase(cluster, url, run, seeded)
        finally:
            keys = redis.Redis.from_url(settings.REDIS_URL)
            for key in keys.scan_iter(f"test-{run}[:.]*", count=1000):
                keys.delete(key)
            keys.close()
