"""Redis down, in-process: rate limits fall back to per-process counts, ws-ticket answers 503 with Retry-After,
live events are dropped without touching Redis while it is known down, and a good call clears the mark."""
import socket
import threading
import time

import kombu.exceptions
import pytest
import redis
from asgiref.sync import sync_to_async

from core import aio
from core.cache import redis_circuit
from core.enqueue import broker_known_down
from core.metrics import CELERY_TASKS_NOT_SENT, EVENTS_FAILED
from core.realtime import realtime_publish
from core.tests.factories import ApiClientFactory
from core.tests.outage import ThrowawayRedis
from core.throttling import client_rates_allow_async
from inventory.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def own_redis(tmp_path, settings):
    """The cache, rate limits, tickets and channel layer on a Redis of this test's own."""
    with ThrowawayRedis(tmp_path / "redis") as server:
        settings.REDIS_URL = server.url  # the process's shared clients are kept per URL: new ones for this one
        settings.CACHES = {alias: {**cache, "LOCATION": server.url} for alias, cache in settings.CACHES.items()}
        settings.CHANNEL_LAYERS = {"default": {**settings.CHANNEL_LAYERS["default"], "CONFIG": {
            **settings.CHANNEL_LAYERS["default"]["CONFIG"], "hosts": [server.url]}}}
        yield server


@pytest.fixture
def three_a_day(settings):
    # A day-long window, so a minute boundary cannot split the test's requests.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"client": "3/day"}}


def test_with_redis_down_the_rate_limit_is_kept_per_process_instead_of_failing(own_redis, three_a_day, reader):
    assert reader.get("/api/v1/stock/").status_code == 200
    own_redis.kill()

    statuses = [reader.get("/api/v1/stock/").status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    assert redis_circuit.is_down()


async def test_with_redis_down_a_fast_path_batch_is_counted_per_process(own_redis, three_a_day):
    first, second = await sync_to_async(ApiClientFactory)(), await sync_to_async(ApiClientFactory)()
    own_redis.kill()

    allowed = await client_rates_allow_async(aio.redis_client(), [first, first, second, first, first])

    assert allowed == [True, True, True, True, False]
    await aio.clients_close()


def test_ws_ticket_with_redis_down_is_503_with_retry_after_in_the_error_shape(own_redis, reader):
    assert reader.post("/api/v1/ws-ticket").status_code == 201
    own_redis.kill()

    response = reader.post("/api/v1/ws-ticket")

    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response.json() == {"error": {"code": "unavailable", "message": response.json()["error"]["message"],
                                         "details": {"retry_after": "1"}}}


def test_ws_ticket_is_issued_again_once_redis_is_back(own_redis, reader):
    own_redis.kill()
    assert reader.post("/api/v1/ws-ticket").status_code == 503
    own_redis.start()
    time.sleep(redis_circuit.probe_seconds)  # the next call after the probe interval tries Redis again

    response = reader.post("/api/v1/ws-ticket")

    assert response.status_code == 201
    assert response.json()["ticket"].startswith("wst_")


def _connections_received(server: ThrowawayRedis) -> int:
    client = redis.Redis.from_url(server.url)
    try:
        return client.info("stats")["total_connections_received"]
    finally:
        client.close()


def test_a_publish_while_redis_is_known_down_is_dropped_and_counted_without_a_redis_call(own_redis):
    product = ProductFactory(on_hand=1)
    event = {"type": "stock.changed", "code": product.code, "category": product.category, "version": 1}
    redis_circuit.mark_down(ConnectionError("test"))
    failed_before = EVENTS_FAILED.labels("stock.changed")._value.get()
    connections_before = _connections_received(own_redis)

    realtime_publish([event])

    assert EVENTS_FAILED.labels("stock.changed")._value.get() == failed_before + 1
    # Only this test's own INFO call connected: the publish never reached for Redis.
    assert _connections_received(own_redis) == connections_before + 1


class ClosingBroker:
    """A TCP listener that accepts each connection and closes it at once: a broker that is there but
    fails every call. Counts the connections a sender opened."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"redis://127.0.0.1:{self.sock.getsockname()[1]}/0"
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self):
        self.sock.close()


def test_a_task_sent_while_the_broker_fails_gives_up_after_one_quick_retry_and_the_next_does_not_try():
    from config.celery_app import app as celery_app
    from webhooks.tasks import webhook_delivery_send_task

    not_sent = CELERY_TASKS_NOT_SENT.labels(webhook_delivery_send_task.name)
    not_sent_before = not_sent._value.get()
    broker = ClosingBroker()
    try:
        with celery_app.connection_for_write(broker.url) as connection:
            with pytest.raises(kombu.exceptions.OperationalError):
                webhook_delivery_send_task.apply_async(args=[1], connection=connection)
            tries_of_the_first = broker.accepted
            with pytest.raises(kombu.exceptions.OperationalError):
                webhook_delivery_send_task.apply_async(args=[2], connection=connection)
    finally:
        broker.close()

    # The first try and one retry (before: four tries, 0.6 s of waiting after a committed write); the
    # next send, within the second that follows, does not reach for the broker at all.
    assert tries_of_the_first == 2
    assert broker.accepted == 2
    assert not_sent._value.get() == not_sent_before + 2  # both counted on /metrics


def test_a_task_is_not_sent_while_the_redis_it_shares_with_the_broker_is_known_down(settings, monkeypatch):
    from config.celery_app import app as celery_app
    from webhooks.tasks import webhook_delivery_send_task

    broker = ClosingBroker()
    settings.REDIS_URL = broker.url
    monkeypatch.setattr(celery_app.conf, "broker_url", broker.url)
    redis_circuit.mark_down(ConnectionError("test"))
    try:
        with celery_app.connection_for_write(broker.url) as connection:
            with pytest.raises(kombu.exceptions.OperationalError):
                webhook_delivery_send_task.apply_async(args=[1], connection=connection)
    finally:
        broker.close()

    assert broker.accepted == 0


def test_behind_sentinel_a_task_is_not_sent_while_the_sentinels_master_is_known_down(settings):
    # The cache's clients and the broker then follow the same master (docs/scaling.md).
    settings.REDIS_SENTINELS = [("10.0.0.1", 26379), ("10.0.0.2", 26380)]
    broker_url = "sentinel://10.0.0.1:26379/0;sentinel://10.0.0.2:26380/0"
    assert not broker_known_down(broker_url)

    redis_circuit.mark_down(ConnectionError("test"))

    assert broker_known_down(broker_url)
    assert not broker_known_down("sentinel://10.0.0.9:26379/0")  # other sentinels: another Redis
    assert not broker_known_down("amqp://guest@127.0.0.1//")


def test_a_direct_redis_call_that_fails_marks_redis_down_and_the_next_one_does_not_connect(own_redis):
    from projections.services import projection_pending_claim

    product = ProductFactory()
    own_redis.kill()
    with pytest.raises(redis.RedisError):
        projection_pending_claim(product_ids=[product.pk])
    assert redis_circuit.is_down()
    own_redis.start()
    connections_before = _connections_received(own_redis)

    with pytest.raises(redis.ConnectionError, match="known down"):
        projection_pending_claim(product_ids=[product.pk])

    assert _connections_received(own_redis) == connections_before + 1  # this test's INFO call only


def test_a_publish_that_fails_marks_redis_down_so_the_next_writes_do_not_wait_for_it(own_redis):
    product = ProductFactory(on_hand=1)
    event = {"type": "stock.changed", "code": product.code, "category": product.category, "version": 1}
    own_redis.kill()
    failed_before = EVENTS_FAILED.labels("stock.changed")._value.get()

    realtime_publish([event])

    assert EVENTS_FAILED.labels("stock.changed")._value.get() == failed_before + 1
    assert redis_circuit.is_down()
