"""scripts/serve.py, the web command of `make run`: it keeps its port to itself, /metrics covers all its processes,
and a killed process is started again while the others serve on."""
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings
from prometheus_client.multiprocess import MultiProcessCollector

from core.tests.metrics import healthz_counted_by_another_process, http_requests_in_text, http_requests_of_route
from core.tests.polling import wait_for
from core.tests.test_security import limits_forget

ROOT = Path(__file__).resolve().parents[2]
SERVE = str(ROOT / "scripts" / "serve.py")


def test_serve_refuses_a_port_that_another_server_already_listens_on():
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]

        result = subprocess.run([sys.executable, SERVE, "--host", "127.0.0.1",
                                 "--port", str(port), "--workers", "1"], capture_output=True, text=True, timeout=30)

    assert result.returncode == 1
    assert f"already listens on 127.0.0.1:{port}" in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _scraped(url: str) -> float:
    """The healthz request count one /metrics answer reports, over a new connection (requests.get opens one)."""
    response = requests.get(url + "/metrics", timeout=15)
    assert response.status_code == 200
    return http_requests_in_text(response.text, "healthz")


def _per_process(metrics_dir: Path, route: str) -> dict[str, float]:
    """Requests of a route counted by each process, read from its own counter file (counter_<pid>.db)."""
    return {path.name: http_requests_of_route((s for m in MultiProcessCollector.merge([str(path)]) for s in m.samples),
                                              route)
            for path in sorted(metrics_dir.glob("counter_*.db"))}


class Served:
    """A running scripts/serve.py and the /healthz requests it has answered so far."""

    def __init__(self, url: str, process: subprocess.Popen):
        self.url, self.process, self.healthz_answered = url, process, 0

    def healthz(self) -> None:
        # New connection each time, so the kernel picks a process each time. The long timeout makes a
        # request wait for a process still loading Django instead of giving up on one it will count later.
        assert requests.get(self.url + "/healthz", timeout=15).status_code == 200
        self.healthz_answered += 1


@contextlib.contextmanager
def serving(tmp_path: Path, workers: int, **env: str):
    """Run serve.py on a free port until it answers /healthz; stop it (SIGTERM) on the way out.

    Without a spare process unless the test asks for one (WEB_SPARE="1"): it is one more process loading Django.
    """
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")  # a file, not a pipe: nobody reads the access log while it runs
    process = subprocess.Popen(
        [sys.executable, SERVE, "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        # No test database behind these servers: /metrics leaves the pipelines' backlog out at once.
        cwd=ROOT, env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "METRICS_BACKLOG_SECONDS": "0.05",
                       "WEB_SPARE": "0", **env},
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    served = Served(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "serve.py did not answer within 20 s"
            try:
                served.healthz()
                break
            except requests.ConnectionError:  # not listening yet: nothing was sent, nothing counted
                time.sleep(0.1)
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # its own session: serve.py and its Daphne children
                process.wait()
        log.close()


@pytest.mark.slow
def test_metrics_report_the_requests_of_every_process_whichever_answers(tmp_path):
    metrics_dir = tmp_path / "metrics"
    with serving(tmp_path, workers=2, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)) as served:
        # Enough requests, each on a new connection, that both processes served some.
        while len(served_by := _per_process(metrics_dir, "healthz")) < 2 or min(served_by.values()) == 0 \
                or served.healthz_answered < 20:
            assert served.healthz_answered < 200, f"one process took every connection: {served_by}"
            served.healthz()
        assert sum(served_by.values()) == served.healthz_answered

        # Scrape until both processes have answered a scrape; every answer reports the same total.
        scrapes = []
        while min(_per_process(metrics_dir, "metrics").values()) == 0:
            assert len(scrapes) < 40, "one process took every scrape"
            scrapes.append(_scraped(served.url))

    assert len(scrapes) >= 2
    assert set(scrapes) == {served.healthz_answered}
    assert served.process.returncode == 0


@pytest.mark.slow
def test_serve_empties_a_configured_metrics_dir_at_start(tmp_path):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    # Counters an earlier run left behind: 1,000 healthz requests of a process that is gone.
    healthz_counted_by_another_process(metrics_dir, 1000)
    stale = set(metrics_dir.glob("*.db"))
    assert stale

    with serving(tmp_path, workers=1, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)) as served:
        total = _scraped(served.url)
        files = set(metrics_dir.glob("*.db"))

    assert total == served.healthz_answered
    assert not stale & files
    assert metrics_dir.is_dir()  # configured by the operator: emptied, never removed


@pytest.mark.slow
def test_serve_makes_its_own_metrics_dir_when_none_is_configured_and_removes_it_when_it_stops(tmp_path, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    temp = tmp_path / "tmp"
    temp.mkdir()

    with serving(tmp_path, workers=2, TMPDIR=str(temp)) as served:  # tempfile makes its directories in TMPDIR
        made = list(temp.glob("stockpulse-metrics-*"))
        assert len(made) == 1
        assert list(made[0].glob("counter_*.db"))
        assert _scraped(served.url) == served.healthz_answered

    assert served.process.returncode == 0
    assert not made[0].exists()


@pytest.mark.django_db(transaction=True)
def test_a_made_up_x_forwarded_for_does_not_dodge_the_token_lockout(tmp_path):
    db = settings.DATABASES["default"]
    production = {"DJANGO_SETTINGS_MODULE": "config.settings.production", "SECRET_KEY": "serve-test",
                  "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
                  "CACHE_KEY_PREFIX": settings.CACHES["security"]["KEY_PREFIX"], "TOKEN_FAILURE_LIMIT": "3"}
    try:
        with serving(tmp_path, workers=1, **production) as served:
            # A new address in the header each time: Daphne reading it would count each guess apart.
            statuses = [requests.get(served.url + "/api/v1/stock/", timeout=15, headers={
                "Authorization": f"Bearer sp_guess{n}", "X-Forwarded-For": f"198.51.100.{n}"}).status_code
                for n in range(4)]
    finally:
        limits_forget()  # 127.0.0.1 is every other test's address

    assert statuses == [401, 401, 429, 429]


def _children(process: subprocess.Popen) -> list[int]:
    """The pids of the Daphne processes serve.py runs now."""
    return sorted(int(pid) for pid in Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split())


@pytest.mark.slow
def test_without_a_spare_a_killed_daphne_process_is_started_again_and_only_its_requests_in_flight_fail(tmp_path):
    metrics_dir = tmp_path / "metrics"
    with serving(tmp_path, workers=2, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)) as served:
        before = _children(served.process)
        answered, failed, stopping = [], [], threading.Event()

        def load():
            while not stopping.is_set():
                started = time.monotonic()
                try:  # a new connection each time, so the kernel spreads them over both processes
                    ok = requests.get(served.url + "/healthz", timeout=30).status_code == 200
                except requests.RequestException:
                    ok = False
                (answered if ok else failed).append(started)

        threads = [threading.Thread(target=load) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(1)
        victim = before[0]
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        now = wait_for(lambda: (pids := _children(served.process)) != [before[1]] and victim not in pids and pids,
                        "no new Daphne process")
        assert len(now) == 2, f"serve.py runs {now} after the kill"
        (newcomer,) = set(now) - set(before)
        # The new process serves: its own counter file fills with healthz requests.
        wait_for(lambda: _per_process(metrics_dir, "healthz").get(f"counter_{newcomer}.db"),
                  "the new Daphne process served nothing")
        time.sleep(0.5)
        stopping.set()
        for thread in threads:
            thread.join(timeout=40)

    # At most one request per load thread was in flight on the killed process; none started later failed.
    assert len(failed) <= len(threads)
    assert all(started < killed_at for started in failed)
    assert len([s for s in answered if s > killed_at]) > 10
    assert before[1] in now  # the other process served on, never restarted
    assert served.process.returncode == 0




def _children_once(process: subprocess.Popen, count: int, condition=lambda pids: True) -> list[int]:
    """serve.py's processes, once there are ``count`` of them and ``condition`` holds for them."""
    def ready():
        pids = _children(process)
        return pids if len(pids) == count and condition(pids) else None

    return wait_for(ready, f"serve.py never ran the {count} processes expected")


def _served_by(metrics_dir: Path, pid: int) -> float:
    return _per_process(metrics_dir, "healthz").get(f"counter_{pid}.db", 0)


@pytest.mark.slow
def test_a_killed_daphne_process_is_replaced_by_the_loaded_spare_not_by_a_process_still_loading(tmp_path):
    metrics_dir, loaded, gate = tmp_path / "metrics", tmp_path / "loaded", tmp_path / "gate"
    loaded.mkdir()
    gate.touch()
    with serving(tmp_path, workers=2, WEB_SPARE="1", WEB_APP="core.tests.gated_asgi:application",
                 TEST_APP_GATE=str(gate), TEST_APP_LOADED_DIR=str(loaded),
                 PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)) as served:
        # Two processes serving and a third, the spare, loaded and waiting for a socket.
        pids = _children_once(served.process, 3, lambda pids: all((loaded / str(pid)).exists() for pid in pids))
        while len(workers := [pid for pid in pids if _served_by(metrics_dir, pid)]) < 2:
            assert served.healthz_answered < 200, "one process took every connection"
            served.healthz()
        (spare,) = set(pids) - set(workers)
        gate.unlink()  # from now on no process can load the application

        os.kill(workers[0], signal.SIGKILL)
        now = _children_once(served.process, 3, lambda pids: workers[0] not in pids)
        # New connections, spread by the kernel over both sockets, the killed process's included: all
        # answered, while the only process started since cannot have loaded anything.
        for _ in range(30):
            served.healthz()

        (newcomer,) = set(now) - set(pids)
        assert _served_by(metrics_dir, spare) > 0
        assert not (loaded / str(newcomer)).exists()
        assert workers[1] in now and spare in now
        gate.touch()
    assert served.process.returncode == 0


@pytest.mark.slow
def test_a_spare_that_dies_while_waiting_is_started_again_and_the_serving_process_is_untouched(tmp_path):
    metrics_dir = tmp_path / "metrics"
    with serving(tmp_path, workers=1, WEB_SPARE="1", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)) as served:
        pids = _children_once(served.process, 2)
        (worker,) = [pid for pid in pids if _served_by(metrics_dir, pid)]  # serving() asked it for /healthz
        (spare,) = set(pids) - {worker}

        os.kill(spare, signal.SIGKILL)
        now = _children_once(served.process, 2, lambda pids: spare not in pids)
        served.healthz()

    assert worker in now
    assert _served_by(metrics_dir, worker) == served.healthz_answered
    assert served.process.returncode == 0
    assert "the spare Daphne process" in (tmp_path / "serve.log").read_text()
