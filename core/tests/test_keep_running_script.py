"""scripts/keep_running.py, under which each Procfile process runs: a dead command is started again, a stop stops it."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from core.tests.outage import ThrowawayRedis, descendants, processes_kill
from core.tests.polling import wait_for
from scripts.keep_running import BACKOFF_MAX, backoff_after

ROOT = Path(__file__).resolve().parents[2]
KEEP_RUNNING = str(ROOT / "scripts" / "keep_running.py")


def _pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too: it only waits for its parent to read its exit code.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def loop(tmp_path):
    """keep_running.py over a command that writes its pid to a file, then sleeps."""
    started = tmp_path / "pids"
    process = subprocess.Popen([sys.executable, KEEP_RUNNING, "sh", "-c", f'echo $$ >> {started}; exec sleep 60'],
                               stderr=subprocess.PIPE, start_new_session=True)
    yield process, started
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    for pid in _pids(started):
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_killed_command_is_started_again(loop):
    process, started = loop
    (first,) = wait_for(lambda: _pids(started), "the command never started")

    os.kill(first, signal.SIGKILL)

    pids = wait_for(lambda: _pids(started)[1:] and _pids(started), "the command was not started again")
    assert pids[0] == first and len(pids) == 2
    assert _alive(pids[1])
    assert process.poll() is None


def test_sigterm_stops_the_command_and_the_loop_without_a_restart(loop):
    process, started = loop
    (first,) = wait_for(lambda: _pids(started), "the command never started")

    process.send_signal(signal.SIGTERM)

    assert process.wait(timeout=15) == 128 + signal.SIGTERM
    assert not _alive(first)
    assert _pids(started) == [first]


def test_a_killed_loop_takes_its_command_with_it(loop):
    process, started = loop
    (first,) = wait_for(lambda: _pids(started), "the command never started")

    process.kill()
    process.wait()

    wait_for(lambda: not _alive(first), "the command outlived its loop")


def test_a_command_that_keeps_dying_at_start_waits_longer_each_time():
    pauses = [backoff_after(deaths) for deaths in range(1, 9)]

    assert pauses[0] == 0  # a crash after a long run: at once
    assert pauses == sorted(pauses) and pauses[1] > 0
    assert pauses[-1] == BACKOFF_MAX


def _one(processes: dict[int, tuple[int, str]], *words: str) -> int | None:
    """The pid of the one process whose command line has these words, not the loop itself nor a child of the
    process (a worker's pool processes share its command line)."""
    found = {pid for pid, (_, cmd) in processes.items() if all(w in cmd for w in words) and "keep_running" not in cmd}
    top = [pid for pid in found if processes[pid][0] not in found]
    return top[0] if len(top) == 1 else None


def _alive_of(pids) -> list[int]:
    return [pid for pid in pids if _alive(pid)]


def _working_since(log: Path, offset: int) -> bool:
    """Whether, past this point of honcho's log, beat sent a task and the worker finished one."""
    text = log.read_bytes()[offset:].decode(errors="replace")
    return "Sending due task" in text and "succeeded in" in text


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_make_run_starts_a_killed_worker_and_beat_again_while_the_rest_keeps_running(tmp_path, settings):
    db = settings.DATABASES["default"]
    log_path = tmp_path / "honcho.log"
    with ThrowawayRedis(tmp_path / "redis") as broker:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "LOG_LEVEL": "INFO",
               "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
               "REDIS_URL": broker.url, "CELERY_BROKER_URL": broker.url, "CELERY_CONCURRENCY": "1",
               # One run id for worker and beat, or each takes its own pid as the queues' key prefix.
               "TEST_RUN_ID": settings.CACHES["default"]["KEY_PREFIX"].removeprefix("test-"),
               # Beat sends the reservation sweep every second, which the worker runs: both visibly at work.
               "RESERVATION_SWEEP_SECONDS": "1",
               "CELERY_BEAT_SCHEDULE_FILE": str(tmp_path / "beat-schedule"), "METRICS_DIR": str(tmp_path / "metrics")}
        log = log_path.open("wb")
        # The runner of `make run` (scripts/run.sh) on the real Procfile, with its worker and beat.
        honcho = subprocess.Popen([str(ROOT / ".venv" / "bin" / "honcho"), "start", "-f", "Procfile", "worker", "beat"],
                                  cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            def running() -> tuple[int, int] | None:
                processes = descendants(honcho.pid)
                worker, beat = _one(processes, "celery", " worker "), _one(processes, "celery", " beat ")
                return (worker, beat) if worker and beat else None

            wait_for(lambda: _working_since(log_path, 0), "worker and beat never worked", polls=1200)
            worker, beat = wait_for(running, "worker and beat are not both running", polls=600)

            killed_at = log_path.stat().st_size
            os.kill(worker, signal.SIGKILL)
            os.kill(beat, signal.SIGKILL)

            new_worker, new_beat = wait_for(
                lambda: (found := running()) and found[0] != worker and found[1] != beat and found,
                "worker and beat were not started again", polls=200)
            # Both killed: whatever is sent and run from now on, the new ones did it.
            wait_for(lambda: _working_since(log_path, killed_at), "the new worker and beat do not work", polls=1200)
            assert honcho.poll() is None  # nothing else was stopped
            assert running() == (new_worker, new_beat)
        finally:
            started = descendants(honcho.pid)
            honcho.send_signal(signal.SIGTERM)
            try:
                honcho.wait(timeout=30)
            finally:
                leftovers = set(started) & set(_alive_of(started))
                processes_kill(leftovers)
                log.close()
        assert not leftovers, leftovers


def test_compose_starts_every_long_running_service_again_when_it_dies():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    policies = {name: service.get("restart", compose["x-app"].get("restart") if "build" in service else None)
                for name, service in compose["services"].items()}

    assert policies.pop("migrate") == "no"  # runs once before the others
    assert set(policies) == {"db", "redis", "web", "worker", "alerts", "orders", "beat"}
    assert set(policies.values()) == {"unless-stopped"}
