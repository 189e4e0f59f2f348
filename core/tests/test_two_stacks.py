"""Two web stacks, as `make run` serves one (scripts/serve.py), on different ports sharing one PostgreSQL database and
one Redis: reservations of the last units split across both never oversell, and a stock change made through
either reaches WebSocket clients connected to both."""
import contextlib
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import requests
from django.conf import settings
from django.db.models import Sum
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as websocket_connect

from core.tests.factories import ApiClientFactory
from core.tests.test_serve_script import Served, serving
from inventory.models import Stock, StockMovement
from inventory.selectors import ledger_drift, location_default_id
from inventory.tests.factories import ProductFactory
from reservations.selectors import reserved_drift

# transaction=True: the rows the stacks share must be committed for their processes to see them, and the
# test's usual teardown flush removes them with what the stacks wrote, among the transactional tests, where a
# flush is expected (not among the plain django_db ones, which count on what the migrations left).
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

RUSH, LIVE = "TWO-RUSH", "TWO-LIVE"
UNITS = 12  # the last units of RUSH: three times as many carts ask for one each


@dataclass
class Stacks:
    a: Served
    b: Served
    token: str

    def both(self) -> tuple[Served, Served]:
        return self.a, self.b

    def post(self, stack: Served, path: str, body: dict | None = None, **headers: str) -> requests.Response:
        return requests.post(stack.url + path, json=body, timeout=60,
                             headers={"Authorization": f"Bearer {self.token}", **headers})

    @contextlib.contextmanager
    def socket(self, stack: Served, code: str) -> Iterator[ClientConnection]:
        """A WebSocket to this stack subscribed to one code, past its hello frame."""
        ticket = self.post(stack, "/api/v1/ws-ticket").json()["ticket"]
        url = stack.url.replace("http://", "ws://") + f"/ws/stock/?codes={code}"
        with websocket_connect(url, origin=stack.url, subprotocols=["stockpulse.v1", f"ticket.{ticket}"],
                               open_timeout=10) as socket:
            assert json.loads(socket.recv(timeout=10))["type"] == "hello"
            yield socket


@pytest.fixture
def stacks(tmp_path):
    """Both stacks on the test database and the test run's Redis keys; the products and token committed first.

    Started per test: a server keeps the default location's id for its life, and the flush after each
    transactional test deletes that row.
    """
    db = settings.DATABASES["default"]
    shared = {"DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
              # One run id: one channel-layer prefix, so both stacks publish to and listen on the same groups.
              "TEST_RUN_ID": settings.CACHES["default"]["KEY_PREFIX"].removeprefix("test-")}
    ProductFactory(code=RUSH, on_hand=UNITS)
    ProductFactory(code=LIVE, on_hand=100)
    token = ApiClientFactory(scopes=["read", "reserve", "manage"]).raw_token
    for name in ("stack-a", "stack-b"):
        (tmp_path / name).mkdir()
    with serving(tmp_path / "stack-a", workers=1, **shared) as a, \
            serving(tmp_path / "stack-b", workers=1, **shared) as b:
        assert a.url != b.url
        yield Stacks(a, b, token)


def _stock(code: str) -> Stock:
    return Stock.objects.get(product__code=code, location_id=location_default_id())


def test_reservations_of_the_last_units_split_across_both_stacks_never_oversell(stacks):
    before = _stock(RUSH)
    assert (before.on_hand, before.reserved) == (UNITS, 0)

    def reserve(attempt: int) -> tuple[int, str, str | None]:
        stack = stacks.both()[attempt % 2]
        # Half plain (the ASGI fast path), half with an Idempotency-Key (the Django view): both lock the same row.
        keyed = {"Idempotency-Key": uuid.uuid4().hex} if attempt // 2 % 2 else {}
        response = stacks.post(stack, "/api/v1/reservations", {"lines": [{"code": RUSH, "quantity": 1}]}, **keyed)
        body = response.json()
        return response.status_code, stack.url, body.get("id") or body.get("error", {}).get("code")

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(reserve, range(3 * UNITS)))

    created = [(url, found) for status, url, found in answers if status == 201]
    assert len(created) == UNITS
    assert sorted({status for status, _, _ in answers}) == [201, 409]
    assert {found for status, _, found in answers if status == 409} == {"insufficient_stock"}
    assert {url for url, _ in created} == {stacks.a.url, stacks.b.url}  # each stack sold some
    held = _stock(RUSH)
    assert (held.on_hand, held.reserved, held.available) == (UNITS, UNITS, 0)

    # Each sale confirmed through the stack that did not take it.
    for url, reservation in created:
        other = stacks.b if url == stacks.a.url else stacks.a
        assert stacks.post(other, f"/api/v1/reservations/{reservation}/confirm").status_code == 200

    sold = _stock(RUSH)
    assert (sold.on_hand, sold.reserved) == (0, 0)
    ledger = StockMovement.objects.filter(product__code=RUSH, location_id=location_default_id())
    assert ledger.aggregate(total=Sum("quantity"))["total"] == 0
    assert ledger.filter(quantity__lt=0).aggregate(total=Sum("quantity"))["total"] == -UNITS
    assert ledger_drift() == [] and reserved_drift() == []


def _next_change(socket: ClientConnection, code: str) -> dict:
    """The next stock.changed event of ``code`` on the socket (heartbeats and other events skipped)."""
    while True:
        event = json.loads(socket.recv(timeout=15))
        if event["type"] == "stock.changed" and event["code"] == code:
            return event


def test_a_stock_change_made_through_either_stack_reaches_sockets_on_both(stacks):
    with contextlib.ExitStack() as opened:
        sockets = [opened.enter_context(stacks.socket(stack, LIVE)) for stack in stacks.both()]
        on_hand = _stock(LIVE).on_hand
        for through, quantity in zip(stacks.both(), (3, 4)):
            response = stacks.post(through, f"/api/v1/stock/{LIVE}/movements",
                                   {"kind": "receipt", "quantity": quantity})
            assert response.status_code == 201, response.text
            on_hand += quantity

            events = [_next_change(socket, LIVE) for socket in sockets]

            assert [event["on_hand"] for event in events] == [on_hand, on_hand]
            assert events[0]["id"] == events[1]["id"]  # one event, delivered by both stacks
        assert _stock(LIVE).on_hand == on_hand
