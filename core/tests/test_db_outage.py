"""PostgreSQL stopped under the real server (scripts/serve.py on a private cluster): every route answers 503 with
Retry-After within 2 s, WebSocket connects are closed with 4503, and when PostgreSQL is back the same requests
succeed with no restart, none of them a 500 from a pooled connection that died with the old server."""
import json
import time
import uuid
from dataclasses import dataclass

import pytest
import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as websocket_connect

from core.tests.outage import private_database
from core.tests.pg_cluster import PrivateCluster
from core.tests.test_serve_script import Served, serving

pytestmark = pytest.mark.slow

CODE = "OUT-1"
# The database-down answer in pt-BR, the default language (core.errors.database_down_body).
DATABASE_DOWN_MESSAGE = "O banco de dados está indisponível; tente de novo em instantes."

SEED = """
import json
from django.contrib.auth import get_user_model
from django.test import Client
from core.tests.factories import ApiClientFactory
from inventory.tests.factories import ProductFactory
ProductFactory(code="OUT-1", on_hand=100000)
api = ApiClientFactory(scopes=["read", "reserve", "manage"])
staff = get_user_model().objects.create_user(username="staff", password="staff-pass-123", is_staff=True,
                                             is_superuser=True)
browser = Client()
browser.force_login(staff)
print(json.dumps({"token": api.raw_token, "session": browser.cookies["sessionid"].value}))
"""


@dataclass
class Outage:
    cluster: PrivateCluster
    served: Served
    token: str
    session: str

    def routes(self) -> list[tuple[str, str, str, dict, int]]:
        """(name, method, path, request arguments, status when PostgreSQL answers) of every route we hit."""
        api = {"Authorization": f"Bearer {self.token}"}
        page = {"Cookie": f"sessionid={self.session}", "Accept": "text/html"}
        return [
            ("stock read", "get", f"/api/v1/stock/{CODE}/", {"headers": api}, 200),
            ("stock list", "get", "/api/v1/stock/", {"headers": api}, 200),
            # Plain, without Idempotency-Key: the ASGI fast path takes these.
            ("reserve, fast path", "post", f"/stock/{CODE}/reserve", {"headers": api, "json": {"quantity": 1}}, 200),
            ("reservation, fast path", "post", "/api/v1/reservations",
             {"headers": api, "json": {"lines": [{"code": CODE, "quantity": 1}]}}, 201),
            # With Idempotency-Key the fast path hands the request to the Django view.
            ("reservation, view", "post", "/api/v1/reservations",
             {"headers": {**api, "Idempotency-Key": "k"}, "json": {"lines": [{"code": CODE, "quantity": 1}]}}, 201),
            ("movement", "post", f"/api/v1/stock/{CODE}/movements",
             {"headers": api, "json": {"kind": "receipt", "quantity": 1}}, 201),
            ("admin", "get", "/admin/", {"headers": page}, 200),
            ("dashboard", "get", "/dashboard/", {"headers": page}, 200),
            ("readyz", "get", "/readyz", {}, 200),
        ]

    def request(self, method: str, path: str, arguments: dict) -> requests.Response:
        if "Idempotency-Key" in arguments.get("headers", {}):
            arguments = {**arguments, "headers": {**arguments["headers"], "Idempotency-Key": uuid.uuid4().hex}}
        return requests.request(method, self.served.url + path, timeout=30, **arguments)

    def all_answered(self) -> dict[str, int]:
        return {name: self.request(method, path, arguments).status_code
                for name, method, path, arguments, _ in self.routes()}

    def expected(self) -> dict[str, int]:
        return {name: status for name, _, _, _, status in self.routes()}

    def websocket_first_frame(self, *, ticket: str | None = None) -> dict:
        """The stream's first frame for the staff session (or, with a ticket, for a subscription to
        CODE), or {"closed": code} when the server closed it."""
        url = self.served.url.replace("http://", "ws://") + "/ws/stock/"
        headers, protocols = {"Cookie": f"sessionid={self.session}"}, ["stockpulse.v1"]
        if ticket is not None:
            url, headers, protocols = f"{url}?codes={CODE}", {}, [*protocols, f"ticket.{ticket}"]
        try:
            with websocket_connect(url, origin=self.served.url, subprotocols=protocols, additional_headers=headers,
                                   open_timeout=10) as socket:
                return json.loads(socket.recv(timeout=10))
        except ConnectionClosed as closed:
            return {"closed": closed.rcvd.code if closed.rcvd else None}

    def websocket_ticket(self) -> str:
        response = requests.post(self.served.url + "/api/v1/ws-ticket", timeout=10,
                                 headers={"Authorization": f"Bearer {self.token}"})
        assert response.status_code == 201, response.text
        return response.json()["ticket"]


@pytest.fixture(scope="module")
def outage(tmp_path_factory):
    with private_database("outage", SEED) as database:
        with serving(tmp_path_factory.mktemp("outage"), workers=1, DATABASE_URL=database.url,
                     TEST_RUN_ID=database.run) as served:
            yield Outage(database.cluster, served, database.seeded["token"], database.seeded["session"])


@pytest.fixture
def running(outage):
    """The private PostgreSQL running at the start of the test (and again after it), the server answering."""
    if not outage.cluster.running():
        outage.cluster.start()
    assert _succeeds_within(outage, seconds=10), "the server did not recover before the test"
    yield outage
    if not outage.cluster.running():
        outage.cluster.start()


def _succeeds_within(outage: Outage, *, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if outage.request("get", f"/api/v1/stock/{CODE}/", outage.routes()[0][3]).status_code == 200:
            return True
        time.sleep(0.2)
    return False


def test_with_postgresql_stopped_every_route_answers_503_with_retry_after_from_the_circuit(running):
    assert running.all_answered() == running.expected()

    running.cluster.stop()

    for name, method, path, arguments, _ in running.routes():
        response = running.request(method, path, arguments)
        assert (name, response.status_code, response.headers.get("Retry-After")) == (name, 503, "1")
        if name in ("admin", "dashboard"):
            assert response.headers["Content-Type"].startswith("text/html")
            assert "Temporariamente indisponível" in response.text  # pt-BR, the default language
        else:
            error = response.json()["error"]
            assert (name, error["code"]) == (name, "not_ready" if name == "readyz" else "unavailable")
            assert set(error) == {"code", "message", "details"}
            if name != "readyz":
                # The database-down answer (the circuit's refusal), not the overload one after the pool's wait.
                assert (name, error["message"]) == (name, DATABASE_DOWN_MESSAGE)


def test_a_websocket_connect_with_postgresql_stopped_is_closed_with_try_again(running):
    assert running.websocket_first_frame()["type"] == "hello"

    running.cluster.stop()

    assert running.websocket_first_frame() == {"closed": 4503}


def test_a_websocket_subscription_to_codes_with_postgresql_stopped_is_closed_with_try_again(running):
    # The ticket is in Redis: the socket is accepted, then its codes cannot be looked up.
    assert running.websocket_first_frame(ticket=running.websocket_ticket())["subscription"]["codes"] == [CODE]
    ticket = running.websocket_ticket()

    running.cluster.stop()

    assert running.websocket_first_frame(ticket=ticket) == {"closed": 4503}


def test_when_postgresql_comes_back_the_same_requests_succeed_without_a_restart(running):
    pid = running.served.process.pid
    running.cluster.stop()
    assert running.all_answered() == {name: 503 for name in running.expected()}

    running.cluster.start()

    assert _succeeds_within(running, seconds=5)
    assert running.all_answered() == running.expected()
    assert running.websocket_first_frame()["type"] == "hello"
    assert running.served.process.pid == pid and running.served.process.poll() is None


def test_after_a_restart_of_postgresql_no_request_fails_on_a_pooled_connection_that_died(running):
    # Every pool of the server holds idle connections to the PostgreSQL about to be restarted.
    assert running.all_answered() == running.expected()

    running.cluster.stop()  # no request while it is down: the server only meets the dead connections after
    running.cluster.start()

    assert running.all_answered() == running.expected()
