"""Concurrency proofs on real PostgreSQL with real threads: no oversell, exact counters, sweeps return units once."""
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from core.tests.factories import ApiClientFactory
from inventory.models import Stock
from inventory.selectors import ledger_drift
from inventory.tests.factories import ProductFactory
from reservations import services
from reservations.models import Reservation, ReservationStatus
from reservations.selectors import reserved_drift

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def http_for(record) -> APIClient:
    http = APIClient()
    http.credentials(HTTP_AUTHORIZATION=f"Bearer {record.raw_token}")
    return http


def run_in_threads(count: int, workers: int, fn):
    """Run fn(i) for i in range(count) on ``workers`` threads released together; return the results in order."""
    barrier = threading.Barrier(workers)

    def start(_):
        barrier.wait()

    def call(i):
        try:
            return fn(i)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(start, range(workers)))
        return list(pool.map(call, range(count)))


def test_200_concurrent_one_unit_reservations_on_10_units():
    product = ProductFactory(code="LAST-10", on_hand=10)
    record = ApiClientFactory(scopes=["reserve"])
    assert Stock.objects.get(product=product).available == 10

    def reserve(_):
        response = http_for(record).post("/stock/LAST-10/reserve", {"quantity": 1}, format="json")
        return response.status_code, response.json()

    results = run_in_threads(200, 32, reserve)

    statuses = [status for status, _ in results]
    assert statuses.count(200) == 10 and statuses.count(409) == 190
    ids = {body["reservation_id"] for status, body in results if status == 200}
    assert len(ids) == 10
    stock = Stock.objects.get(product=product)
    assert (stock.on_hand, stock.reserved, stock.available) == (10, 10, 0)
    assert Reservation.objects.filter(client=record, status=ReservationStatus.ACTIVE).count() == 10
    assert reserved_drift() == [] and ledger_drift() == []


def test_multi_line_carts_under_contention_never_oversell():
    codes = [f"HOT-{i}" for i in range(5)]
    # Little stock, so carts keep running into each other and into 409s.
    products = [ProductFactory(code=code, on_hand=12) for code in codes]
    record = ApiClientFactory(scopes=["reserve"])
    # A fixed number of rounds per thread (16 threads x 40) keeps the run several seconds long on
    # this machine and its outcome independent of how fast the machine is.
    rounds_per_shopper = 40
    unexpected: list[tuple[int, str]] = []
    lowest_available = [10**9]

    def shopper(seed):
        rng = random.Random(seed)
        http = http_for(record)
        mine: list[str] = []
        counts = {201: 0, 409: 0}
        for _ in range(rounds_per_shopper):
            roll = rng.random()
            if mine and roll < 0.25:
                action = rng.choice(["release", "confirm"])
                response = http.post(f"/api/v1/reservations/{mine.pop()}/{action}", format="json")
                if response.status_code != 200:
                    unexpected.append((response.status_code, response.content.decode()[:200]))
                continue
            cart = [{"code": code, "quantity": rng.randint(1, 3)} for code in rng.sample(codes, rng.randint(1, 4))]
            response = http.post("/api/v1/reservations", {"lines": cart}, format="json")
            if response.status_code == 201:
                mine.append(response.json()["id"])
            elif response.status_code != 409:
                unexpected.append((response.status_code, response.content.decode()[:200]))
            counts[response.status_code] = counts.get(response.status_code, 0) + 1
        return counts

    def watcher():
        while not done.is_set():
            low = min(Stock.objects.filter(product__in=products).values_list("available", flat=True))
            lowest_available[0] = min(lowest_available[0], low)
            time.sleep(0.01)
        connection.close()

    done = threading.Event()
    watch = threading.Thread(target=watcher)
    watch.start()
    results = run_in_threads(16, 16, shopper)
    done.set()
    watch.join()

    assert unexpected == []
    assert sum(r.get(201, 0) for r in results) > 0 and sum(r.get(409, 0) for r in results) > 0
    assert lowest_available[0] >= 0
    assert all(s.available >= 0 for s in Stock.objects.filter(product__in=products))
    assert reserved_drift() == []
    assert ledger_drift() == []


def test_racing_sweeps_return_units_exactly_once():
    products = [ProductFactory(code=f"SW-{i}", on_hand=100) for i in range(3)]
    made = [
        services.reservation_create(client=None, lines=[{"code": p.code, "quantity": 1 + n % 2} for p in products])
        for n in range(40)
    ]
    Reservation.objects.filter(pk__in=[r.pk for r in made]).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert [Stock.objects.get(product=p).reserved for p in products] == [60, 60, 60]

    counts = run_in_threads(6, 6, lambda _: services.reservation_expire_due(batch_size=7))

    assert sum(counts) == 40
    assert [Stock.objects.get(product=p).reserved for p in products] == [0, 0, 0]
    assert Reservation.objects.filter(status=ReservationStatus.EXPIRED).count() == 40
    assert reserved_drift() == []


def test_twenty_concurrent_requests_with_one_idempotency_key_make_one_reservation():
    product = ProductFactory(code="IDEM", on_hand=100)
    record = ApiClientFactory(scopes=["reserve"])
    body = {"lines": [{"code": "IDEM", "quantity": 3}]}

    def create(_):
        response = http_for(record).post("/api/v1/reservations", body, format="json", HTTP_IDEMPOTENCY_KEY="order-77")
        return response.status_code, response.json().get("id")

    results = run_in_threads(20, 20, create)

    assert {status for status, _ in results} == {201}
    assert len({rid for _, rid in results}) == 1
    assert Reservation.objects.filter(client=record).count() == 1
    assert Stock.objects.get(product=product).reserved == 3


def test_batches_racing_from_eight_event_loops_grant_every_unit_once():
    """The fast path's batches, each on its own loop and pool as in separate Daphne processes."""
    import asyncio

    from core import aio
    from core.realtime import realtime_publisher_drain
    from projections.services import projection_marks_drain

    product = ProductFactory(code="BATCH-RACE", on_hand=50, low_stock_threshold=0)
    other = ProductFactory(code="BATCH-SIDE", on_hand=1000, low_stock_threshold=0)
    record = ApiClientFactory(scopes=["reserve"])
    assert Stock.objects.get(product=product).available == 50

    async def batches(seed: int) -> list[tuple[str, bool]]:
        rng = random.Random(seed)
        granted = []
        for _ in range(10):
            asks = [services.ReservationAsk(client=record, lines=((rng.choice(["BATCH-RACE", "BATCH-SIDE"]), 1),),
                                            ttl=timedelta(minutes=5)) for _ in range(8)]
            created = await services.reservation_create_batch_async(asks=asks)
            granted += [(ask.lines[0][0], isinstance(outcome, Reservation)) for ask, outcome in zip(asks, created)]
        await realtime_publisher_drain()
        await projection_marks_drain()
        await aio.clients_close()
        return granted

    results = run_in_threads(8, 8, lambda i: asyncio.run(batches(i)))

    outcomes = [outcome for per_loop in results for outcome in per_loop]
    race_asks = sum(1 for code, _ in outcomes if code == "BATCH-RACE")
    race_granted = sum(1 for code, ok in outcomes if code == "BATCH-RACE" and ok)
    assert race_asks > 50
    # Every unit but the last goes: that one would move the level to "out", which the general path records.
    assert race_granted == 49
    assert all(ok for code, ok in outcomes if code == "BATCH-SIDE")
    stock, side = Stock.objects.get(product=product), Stock.objects.get(product=other)
    assert (stock.on_hand, stock.reserved) == (50, 49)
    assert side.reserved == sum(1 for code, _ in outcomes if code == "BATCH-SIDE")
    assert Reservation.objects.filter(lines__product=product).count() == 49
    assert reserved_drift() == [] and ledger_drift() == []


def test_cart_batches_racing_from_eight_event_loops_never_oversell():
    """Carts of 1-4 lines over 5 hot products, in random order, batched on eight loops at once."""
    import asyncio

    from core import aio
    from core.realtime import realtime_publisher_drain
    from projections.services import projection_marks_drain

    products = [ProductFactory(code=f"CART-RACE-{i}", on_hand=60, low_stock_threshold=0) for i in range(5)]
    record = ApiClientFactory(scopes=["reserve"])

    async def batches(seed: int) -> list[tuple[tuple[tuple[str, int], ...], str]]:
        rng = random.Random(seed)
        outcomes = []
        for _ in range(12):
            asks = [services.ReservationAsk(
                client=record, ttl=timedelta(minutes=5),
                lines=tuple((p.code, rng.randint(1, 3)) for p in rng.sample(products, rng.randint(1, 4))))
                for _ in range(6)]
            for ask, outcome in zip(asks, await services.reservation_create_batch_async(asks=asks)):
                kind = ("reserved" if isinstance(outcome, Reservation)
                        else "short" if isinstance(outcome, services.ReservationShort) else "general")
                outcomes.append((ask.lines, kind))
        await realtime_publisher_drain()
        await projection_marks_drain()
        await aio.clients_close()
        return outcomes

    results = run_in_threads(8, 8, lambda i: asyncio.run(batches(100 + i)))

    outcomes = [outcome for per_loop in results for outcome in per_loop]
    assert {kind for _, kind in outcomes} >= {"reserved", "short"}
    granted: dict[str, int] = {}
    for lines, kind in outcomes:
        if kind == "reserved":
            for code, quantity in lines:
                granted[code] = granted.get(code, 0) + quantity
    for product in products:
        stock = Stock.objects.get(product=product)
        assert 0 <= stock.reserved <= stock.on_hand
        assert stock.reserved == granted.get(product.code, 0)
    assert Reservation.objects.count() == sum(1 for _, kind in outcomes if kind == "reserved")
    assert reserved_drift() == [] and ledger_drift() == []
