"""A Redis outage under load, through the real server (scripts/serve.py): PostgreSQL keeps serving reads and writes,
only what truly needs Redis (ws-ticket) answers 503 with Retry-After, everything recovers without a restart, and
work whose task could not be sent is done by the sweeps once Redis is back."""
import json
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from websockets.sync.client import connect

from core.tests.factories import ApiClientFactory
from core.tests.outage import ServedApp, ThrowawayRedis, processes_stop, production_env_on_test_database
from inventory.models import StockMovement
from inventory.tests.factories import ProductFactory
from inventory.tests.test_dashboard_browser import static_root  # noqa: F401  (fixture)
from webhooks.models import DeliveryStatus, WebhookDelivery
from webhooks.tests.factories import endpoint_make

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]

# What each kind of request may answer: its success, or a 4xx the rules give (a short cart is 409).
# A 503 is allowed only where the route truly needs Redis.
ALLOWED = {
    "read": {200},
    "cart": {201, 409},
    "fast": {200, 409},
    "movement": {201},
    "ticket": {201, 503},
    "admin": {302},
}
SUCCESS = {"read": 200, "cart": 201, "fast": 200, "movement": 201, "ticket": 201, "admin": 302}


@dataclass
class Answer:
    started: float
    ended: float
    kind: str
    status: int
    retry_after: str | None
    body: dict | None


@pytest.fixture
def redis_server(tmp_path):
    with ThrowawayRedis(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def app(redis_server, static_root, tmp_path):  # noqa: F811
    # Cache, rate limits, channel layer and the Celery broker: all on the Redis this test kills.
    env = production_env_on_test_database(STATIC_ROOT=str(static_root), REDIS_URL=redis_server.url,
                                          CELERY_BROKER_URL=redis_server.url, API_RATE_LIMIT="100000/min")
    with ServedApp(env, tmp_path / "serve.log") as served:
        yield served


def _staff_session(app: ServedApp, django_user_model) -> requests.Session:
    user = django_user_model.objects.create_user(username="staff", is_staff=True, is_superuser=True)
    # The server runs production settings, which do not know the suite's fast MD5 hasher.
    user.password = PBKDF2PasswordHasher().encode("staff-pass-123", "outagetestsalt")
    user.save(update_fields=["password"])
    session = requests.Session()
    session.get(app.url + "/admin/login/", timeout=10)
    answer = session.post(app.url + "/admin/login/", timeout=30, allow_redirects=False,
                          data={"username": "staff", "password": "staff-pass-123", "next": "/admin/",
                                "csrfmiddlewaretoken": session.cookies["csrftoken"]})
    assert answer.status_code == 302
    return session


class Load:
    """Threads sending every kind of request in turn until stopped; each answer is kept."""

    def __init__(self, app: ServedApp, token: str, codes: list[str], staff: requests.Session, product_pk: int):
        self.app, self.codes, self.staff, self.product_pk = app, codes, staff, product_pk
        self.headers = {"Authorization": f"Bearer {token}"}
        self.answers: list[Answer] = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._api, args=(i,)) for i in range(4)]
        self.threads.append(threading.Thread(target=self._admin))

    def _record(self, kind: str, send) -> None:
        started = time.monotonic()
        try:
            response = send()
        except requests.RequestException as exc:  # no answer at all: kept as status 0, which no kind allows
            self.answers.append(Answer(started, time.monotonic(), kind, 0, None, {"exception": repr(exc)}))
            return
        try:
            body = response.json()
        except ValueError:
            body = None
        self.answers.append(Answer(started, time.monotonic(), kind, response.status_code,
                                   response.headers.get("Retry-After"), body))

    def _api(self, index: int) -> None:
        http, base, first, second = requests.Session(), self.app.url, self.codes[index % 2], self.codes[2]
        send = {
            "read": lambda: http.get(f"{base}/api/v1/stock/{first}/", headers=self.headers, timeout=10),
            "cart": lambda: http.post(f"{base}/api/v1/reservations", headers=self.headers, timeout=10, json={
                "lines": [{"code": first, "quantity": 1}, {"code": second, "quantity": 1}]}),
            "fast": lambda: http.post(f"{base}/stock/{first}/reserve", headers=self.headers, timeout=10,
                                      json={"quantity": 1}),
            "movement": lambda: http.post(f"{base}/api/v1/stock/{second}/movements", headers=self.headers,
                                          timeout=10, json={"kind": "receipt", "quantity": 1, "reason": "load"}),
            "ticket": lambda: http.post(f"{base}/api/v1/ws-ticket", headers=self.headers, timeout=10),
        }
        while not self.stopping.is_set():
            for kind, request in send.items():
                self._record(kind, request)

    def _admin(self) -> None:
        url = f"{self.app.url}/admin/inventory/product/{self.product_pk}/adjust/"
        while not self.stopping.is_set():
            self._record("admin", lambda: self.staff.post(url, timeout=10, allow_redirects=False, data={
                "kind": "receipt", "quantity": 1, "reason": "staff load",
                "csrfmiddlewaretoken": self.staff.cookies["csrftoken"]}))

    def __enter__(self) -> "Load":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def between(self, start: float, end: float) -> list[Answer]:
        """The answers to requests sent at ``start`` or later and answered before ``end``."""
        return [a for a in self.answers if start <= a.started and a.ended < end]


def _error_shaped(answer: Answer) -> bool:
    error = (answer.body or {}).get("error")
    return isinstance(error, dict) and set(error) == {"code", "message", "details"}


def _live_event_arrives(app: ServedApp, token: str, code: str) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    ticket = requests.post(f"{app.url}/api/v1/ws-ticket", headers=headers, timeout=10).json()["ticket"]
    with connect(f"ws://127.0.0.1:{app.port}/ws/stock/?codes={code}", origin=app.url, open_timeout=10,
                 subprotocols=["stockpulse.v1", f"ticket.{ticket}"]) as socket:
        assert json.loads(socket.recv(timeout=10))["type"] == "hello"
        assert requests.post(f"{app.url}/api/v1/stock/{code}/movements", headers=headers, timeout=10,
                             json={"kind": "receipt", "quantity": 1}).status_code == 201
        while True:
            message = json.loads(socket.recv(timeout=10))
            if message["type"] == "stock.changed":
                return message


def test_a_redis_outage_under_load_answers_no_500_and_recovers_without_a_restart(app, redis_server,
                                                                                 django_user_model):
    client = ApiClientFactory(scopes=["read", "reserve", "manage"])
    products = [ProductFactory(on_hand=100_000) for _ in range(3)]
    staff = _staff_session(app, django_user_model)
    pids_before = app.children()

    with Load(app, client.raw_token, [p.code for p in products], staff, products[0].pk) as load:
        time.sleep(1.5)
        redis_server.kill()
        killed_at = time.monotonic()  # after the kill: a request sent while it dies may still be served
        time.sleep(4)
        starting_at = time.monotonic()  # before the start: Redis may answer before start() returns
        redis_server.start()
        restarted_at = time.monotonic()
        # Back without a restart: every kind succeeds again, tickets included (each process tries Redis
        # again within a second of its last failure).
        deadline = restarted_at + 30
        while {a.kind for a in load.between(restarted_at + 1, time.monotonic()) if a.status == SUCCESS[a.kind]} \
                != set(ALLOWED):
            assert time.monotonic() < deadline, "not every kind of request succeeded again after Redis came back"
            time.sleep(0.2)

    answers = load.answers
    assert not [a for a in answers if a.status >= 500 and a.status != 503], "an answer was a 5xx other than 503"
    assert [a for a in answers if a.status not in ALLOWED[a.kind]] == []
    # Every API refusal is in the error shape; every 503 says when to come back.
    assert all(_error_shaped(a) for a in answers if a.kind != "admin" and a.status >= 400)
    unavailable = [a for a in answers if a.status == 503]
    assert unavailable and all(a.retry_after and a.body["error"]["code"] == "unavailable" for a in unavailable)
    assert {a.kind for a in unavailable} == {"ticket"}

    # While Redis was down, PostgreSQL served every kind but the ticket.
    during = load.between(killed_at, starting_at)
    served_during = {a.kind for a in during if a.status == SUCCESS[a.kind]}
    assert served_during == {"read", "cart", "fast", "movement", "admin"}
    assert {a.status for a in during if a.kind == "ticket"} == {503}
    assert app.children() == pids_before

    # Every movement that answered was committed, none that did not.
    for kind, reason in (("movement", "load"), ("admin", "staff load")):
        answered = sum(1 for a in answers if a.kind == kind and a.status == SUCCESS[kind])
        assert StockMovement.objects.filter(reason=reason).count() == answered

    # Rate limits count in Redis again, and live events flow to a new socket.
    keys = redis.Redis.from_url(redis_server.url).keys("*throttle:client:*")
    assert keys
    assert _live_event_arrives(app, client.raw_token, products[2].code)["code"] == products[2].code


@pytest.fixture
def worker_and_beat(redis_server, tmp_path):
    """A Celery worker (default queue) and beat on the Redis this test kills, sweeping webhooks every second."""
    env = production_env_on_test_database(REDIS_URL=redis_server.url, CELERY_BROKER_URL=redis_server.url,
                                          WEBHOOK_SWEEP_EVERY_SECONDS="1", LOG_LEVEL="INFO")
    celery = [str(ROOT / ".venv" / "bin" / "celery"), "-A", "config.celery_app"]
    commands = [[*celery, "worker", "-Q", "celery", "--concurrency=1", "-n", f"outage-{redis_server.port}@%h"],
                [*celery, "beat", f"--schedule={tmp_path / 'beat-schedule'}"]]
    log = (tmp_path / "celery.log").open("wb")
    processes = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True) for command in commands]
    yield tmp_path / "celery.log"
    processes_stop(processes)
    log.close()


def test_a_webhook_whose_task_could_not_be_sent_during_the_outage_is_delivered_by_the_sweep_after_it(
        app, redis_server, worker_and_beat, receiver):
    endpoint_make(url=receiver.url)
    product = ProductFactory(on_hand=5)
    client = ApiClientFactory(scopes=["read", "manage"])
    redis_server.kill()

    answer = requests.post(f"{app.url}/api/v1/stock/{product.code}/movements", timeout=30, json={
        "kind": "receipt", "quantity": 2}, headers={"Authorization": f"Bearer {client.raw_token}"})

    assert answer.status_code == 201
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING and receiver.received == []

    redis_server.start()
    deadline = time.monotonic() + 60
    # The worker records the outcome just after the receiver answered.
    while delivery.status != DeliveryStatus.DELIVERED:
        assert time.monotonic() < deadline, worker_and_beat.read_text()[-3000:]
        time.sleep(0.2)
        delivery.refresh_from_db()
    assert len(receiver.received) == 1
    assert receiver.received[0].body["data"]["on_hand"] == 7 and receiver.received[0].signature_ok
