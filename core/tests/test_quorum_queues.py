"""Celery on RabbitMQ (CELERY_BROKER_URL amqp://): our four queues are declared as quorum queues and a task sent
through them, at once or with a countdown, reaches a real worker."""
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from core.tests.outage import processes_stop
from core.tests.polling import wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
QUEUES = tuple(queue.name for queue in settings.CELERY_TASK_QUEUES)

SEND = """
import django
django.setup()
from config.celery_app import app
now = app.send_task("celery.accumulate", args=["now"], queue="alerts")
later = app.send_task("celery.accumulate", args=["later"], queue="orders", countdown=1)
print(now.id, later.id)
"""


def _rabbitmqctl(*args: str) -> str:
    return subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, text=True, timeout=120).stdout


@pytest.fixture(scope="module")
def vhost():
    """A RabbitMQ virtual host of this test alone on the local broker, removed afterwards."""
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not installed: no local RabbitMQ to test against")
    name = f"sp-{os.environ.get('TEST_RUN_ID', os.getpid())}-{uuid.uuid4().hex[:8]}"
    _rabbitmqctl("add_vhost", name)
    try:
        _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield name
    finally:
        _rabbitmqctl("delete_vhost", name)


def _env(vhost: str) -> dict[str, str]:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{vhost}"}


@pytest.fixture(scope="module")
def worker(vhost, tmp_path_factory):
    """A worker as the Procfile starts one, on every queue, with its log."""
    log_path = tmp_path_factory.mktemp("quorum") / "worker.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "celery"), "-A", "config.celery_app", "worker", "-Q", ",".join(QUEUES),
         "-P", "solo", "--loglevel=INFO", "-n", f"quorum-{vhost}@%h"],
        cwd=ROOT, env=_env(vhost), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: "ready." in log_path.read_text() or process.poll() is not None, "the worker never started")
        assert process.poll() is None, log_path.read_text()[-3000:]
        yield log_path
    finally:
        processes_stop([process])
        log.close()


def test_on_the_redis_broker_the_queues_stay_plain(settings):
    # The test run's broker is Redis: no queue arguments, direct exchanges, as before.
    assert not settings.CELERY_BROKER_URL.startswith("amqp")
    assert [(queue.name, queue.queue_arguments, queue.exchange.type) for queue in settings.CELERY_TASK_QUEUES] == [
        (name, None, "direct") for name in QUEUES]


def test_every_queue_is_declared_as_a_quorum_queue(vhost, worker):
    listed = json.loads(_rabbitmqctl("list_queues", "-p", vhost, "name", "type", "durable", "--formatter", "json"))
    ours = {row["name"]: (row["type"], row["durable"]) for row in listed if row["name"] in QUEUES}

    assert ours == {name: ("quorum", True) for name in QUEUES}


def test_a_task_sent_now_and_one_with_a_countdown_both_reach_the_worker(vhost, worker):
    sent = subprocess.run([sys.executable, "-c", SEND], cwd=ROOT, env=_env(vhost), check=True, capture_output=True,
                          text=True, timeout=60)
    now, later = sent.stdout.split()

    # The countdown one travels through RabbitMQ's delay queues (Celery's native delayed delivery), as the
    # alert and order retries do: with a direct exchange it would never come back.
    wait_for(lambda: all(f"celery.accumulate[{task}] succeeded" in worker.read_text() for task in (now, later)),
             f"the worker did not run both tasks:\n{worker.read_text()[-3000:]}")
    delayed = json.loads(_rabbitmqctl("list_queues", "-p", vhost, "name", "type", "--formatter", "json"))
    assert {row["type"] for row in delayed if row["name"].startswith("celery_delayed_")} == {"quorum"}
