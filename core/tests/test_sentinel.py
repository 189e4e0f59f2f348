"""Redis behind Sentinel (REDIS_SENTINELS): the channel layer, the Celery broker and every other use of Redis (the
cache, rate limits, WebSocket tickets, token lockouts, readiness) find the master through a sentinel, and after a
failover they work through the promoted replica."""
import asyncio
import itertools
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
import redis
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.core.cache import cache, caches

from core import aio
from core.cache import redis_direct
from core.redis_sentinel import channel_layer_hosts, sentinels_parse
from core.security import (
    CACHE_ALIAS,
    token_failure_record,
    token_lockout_active_async,
    token_lockout_checks_drain,
    token_lockout_remaining,
)
from core.tests.factories import ApiClientFactory
from core.tests.outage import ThrowawayRedis, free_port
from core.tests.polling import wait_for
from core.throttling import client_rate_window, client_rates_allow_async
from inventory.ws_tickets import ws_ticket_key, ws_ticket_redeem

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
MASTER = "stockpulse-test"
LAYER_ROUND_TRIP = """
import asyncio
import django
django.setup()
from channels.layers import get_channel_layer
from django.conf import settings

async def main():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("stock.sentinel", channel)
    await layer.group_send("stock.sentinel", {"type": "stock.changed", "sku": "S-1"})
    return (await asyncio.wait_for(layer.receive(channel), timeout=10))["sku"]

print(settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["master_name"], asyncio.run(main()))
"""
SEND_TASK = """
import django
django.setup()
from config.celery_app import app
print(app.send_task("celery.accumulate", args=["via sentinel"], queue="celery").id)
"""


@dataclass
class Sentinelled:
    master_port: int
    replica_port: int
    sentinel_port: int
    master: ThrowawayRedis

    def sentinel(self) -> redis.Redis:
        return redis.Redis(port=self.sentinel_port, decode_responses=True, socket_timeout=5)

    def master_port_now(self) -> int:
        with self.sentinel() as client:
            return int(client.execute_command("SENTINEL", "get-master-addr-by-name", MASTER)[1])

    def fail_over(self, *, kill_master: bool) -> None:
        """Have the sentinel promote the replica (``SENTINEL FAILOVER``, or the master killed as a crash kills
        it) and wait until it names the replica, the replica is master, and a live old master is its replica."""
        if kill_master:
            self.master.kill()
        else:
            with self.sentinel() as client:
                client.execute_command("SENTINEL", "FAILOVER", MASTER)
        wait_for(lambda: self.master_port_now() == self.replica_port, "the sentinel did not promote the replica")
        with redis.Redis(port=self.replica_port, decode_responses=True) as promoted:
            wait_for(lambda: promoted.info("replication")["role"] == "master", "the replica did not become master")
        if not kill_master:
            # From here no write can land on the old master: it refuses them (READONLY).
            with redis.Redis(port=self.master_port, decode_responses=True) as old:
                wait_for(lambda: old.info("replication")["role"] == "slave",
                         "the sentinel did not turn the old master into a replica")

    key_prefix = f"test-sentinel-{uuid.uuid4().hex[:8]}."  # the processes' Celery keys (config/settings/test.py)

    def env(self) -> dict[str, str]:
        """Settings for a process on this Redis: only the sentinel; REDIS_URL points nowhere, so nothing sneaks
        past Sentinel to the shared Redis."""
        return {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test",
                "REDIS_SENTINELS": f"127.0.0.1:{self.sentinel_port}", "REDIS_SENTINEL_MASTER": MASTER,
                "REDIS_URL": "redis://127.0.0.1:1/0", "CELERY_BROKER_URL": "",  # empty: unset
                "TEST_RUN_ID": self.key_prefix.removeprefix("test-").removesuffix(".")}


@pytest.fixture
def sentinelled(tmp_path):
    """A master, its replica in sync, and one sentinel watching them (quorum 1, so it may fail over alone)."""
    master_port, replica_port, sentinel_port = free_port(), free_port(), free_port()
    servers = [ThrowawayRedis(tmp_path / "master", master_port).start()]
    try:
        servers.append(ThrowawayRedis(tmp_path / "replica", replica_port,
                                      extra=("--replicaof", "127.0.0.1", str(master_port))).start())
        with redis.Redis(port=replica_port, decode_responses=True) as replica:
            wait_for(lambda: replica.info("replication")["master_link_status"] == "up", "the replica never synced")
        config = tmp_path / "sentinel.conf"  # Sentinel rewrites its file as it learns, so it must be writable
        config.write_text(f"sentinel monitor {MASTER} 127.0.0.1 {master_port} 1\n"
                          f"sentinel down-after-milliseconds {MASTER} 1000\n"
                          f"sentinel failover-timeout {MASTER} 10000\n")
        servers.append(ThrowawayRedis(tmp_path / "sentinel", sentinel_port, extra=(str(config), "--sentinel")).start())
        found = Sentinelled(master_port, replica_port, sentinel_port, servers[0])
        with found.sentinel() as client:
            wait_for(lambda: client.execute_command("SENTINEL", "replicas", MASTER),
                     "the sentinel never saw the replica")
        yield found
    finally:
        for server in servers:
            server.kill()


def test_sentinels_parse_reads_hosts_with_and_without_a_port():
    assert sentinels_parse("") == []
    assert sentinels_parse("10.0.0.1:26380, sentinel-b ,[::1]:26381") == [
        ("10.0.0.1", 26380), ("sentinel-b", 26379), ("::1", 26381)]


def test_without_sentinels_the_layer_and_the_broker_use_redis_url(settings):
    assert settings.REDIS_SENTINELS == []
    assert settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] == [settings.REDIS_URL]
    assert settings.CELERY_BROKER_URL == settings.REDIS_URL
    assert "master_name" not in settings.CELERY_BROKER_TRANSPORT_OPTIONS


def test_the_channel_layer_of_the_settings_carries_a_group_message_through_the_sentinels_master(sentinelled):
    with redis.Redis(port=sentinelled.master_port) as master:
        published_before = master.info("stats")["total_commands_processed"]

        done = subprocess.run([sys.executable, "-c", LAYER_ROUND_TRIP], cwd=ROOT, env=sentinelled.env(),
                              capture_output=True, text=True, timeout=60)

        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.split() == [MASTER, "S-1"]
        assert master.info("stats")["total_commands_processed"] > published_before


def test_the_celery_broker_of_the_settings_is_the_sentinels_master(sentinelled):
    with redis.Redis(port=sentinelled.master_port) as master:
        assert master.dbsize() == 0

        sent = subprocess.run([sys.executable, "-c", SEND_TASK], cwd=ROOT, env=sentinelled.env(), capture_output=True,
                              text=True, timeout=60)

        assert sent.returncode == 0, sent.stderr[-3000:]
        # The queue's list (under the run's key prefix) holds the task, on the master the sentinel named.
        queue = f"{sentinelled.key_prefix}celery"
        assert master.llen(queue) == 1
        assert sent.stdout.strip() in master.lindex(queue, 0).decode()


async def _round_trip(layer: RedisPubSubChannelLayer, group: str) -> str | None:
    """The sku of a message sent to the group and received back, or None when Redis refused it."""
    try:
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        sku = uuid.uuid4().hex
        await layer.group_send(group, {"type": "stock.changed", "sku": sku})
        received = await asyncio.wait_for(layer.receive(channel), timeout=5)
        await layer.group_discard(group, channel)
        return received["sku"] if received["sku"] == sku else None
    except (redis.exceptions.RedisError, OSError, asyncio.TimeoutError):
        return None


async def test_after_a_failover_the_layer_sends_through_the_promoted_replica(sentinelled):
    layer = RedisPubSubChannelLayer(hosts=channel_layer_hosts([("127.0.0.1", sentinelled.sentinel_port)], MASTER),
                                    prefix=f"test-sentinel-{uuid.uuid4().hex[:8]}")
    try:
        assert await _round_trip(layer, "stock.before")
        assert sentinelled.master_port_now() == sentinelled.master_port

        await asyncio.to_thread(sentinelled.fail_over, kill_master=False)

        # The layer's connections to the old master are dropped on their next use; a new group then works.
        for _ in range(100):
            if await _round_trip(layer, "stock.after"):
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the layer never sent through the promoted replica")
    finally:
        await layer.flush()


NOWHERE = "redis://127.0.0.1:1/0"  # nothing listens on port 1 of the loopback


@pytest.fixture
def on_the_sentinels(sentinelled, settings):
    """This process configured as a host with only the sentinel: REDIS_URL and the caches' LOCATION point
    nowhere, so a use of Redis that did not ask the sentinel would fail (and be seen to)."""
    settings.REDIS_SENTINELS = [("127.0.0.1", sentinelled.sentinel_port)]
    settings.REDIS_SENTINEL_MASTER = MASTER
    settings.REDIS_URL = NOWHERE
    settings.CACHES = {alias: {**config, "LOCATION": NOWHERE} for alias, config in settings.CACHES.items()}
    # A day-long window, so a minute boundary cannot split a client's requests; a lockout at the second failure.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"client": "1000/day"}}
    settings.TOKEN_FAILURE_LIMIT = 2
    return sentinelled


# Each use below works with keys of its own (a new cache key, API client, ticket, address), does what the
# application does, and says whether it worked and its writes are on ``server``. A use that fails open
# (rate limits, token counters) answers as if it worked: only its keys on ``server`` tell.

def _cache_set_get(server: redis.Redis, **_) -> bool:
    key = f"sentinel-{uuid.uuid4().hex}"
    try:
        cache.set(key, {"sku": "S-1"}, 60)
        read = cache.get(key)
    except redis.RedisError:
        return False
    return read == {"sku": "S-1"} and server.exists(cache.make_key(key)) == 1


def _rate_limit_counted(server: redis.Redis, *, api_client_with_scopes, **_) -> bool:
    http = api_client_with_scopes("read")
    if http.get("/api/v1/stock/").status_code != 200:
        return False
    return server.get(client_rate_window(f"client-{http.api_client.pk}")[0]) == b"1"


def _rate_limit_counted_in_a_batch(server: redis.Redis, **_) -> bool:
    clients = [ApiClientFactory(), ApiClientFactory()]

    async def check() -> list[bool]:
        try:
            return await client_rates_allow_async(aio.redis_client(), [clients[0], clients[1], clients[0]])
        finally:
            await aio.clients_close()

    allowed = asyncio.run(check())
    counts = [server.get(client_rate_window(f"client-{client.pk}")[0]) for client in clients]
    return allowed == [True, True, True] and counts == [b"2", b"1"]


def _ws_ticket_issued_and_redeemed(server: redis.Redis, *, api_client_with_scopes, **_) -> bool:
    http = api_client_with_scopes("read")
    response = http.post("/api/v1/ws-ticket")
    if response.status_code != 201:
        return False
    key = ws_ticket_key(response.json()["ticket"])
    stored = server.exists(key) == 1
    async def redeem():
        try:
            return await ws_ticket_redeem(ticket=response.json()["ticket"])
        finally:
            await aio.clients_close()

    try:
        principal = asyncio.run(redeem())
    except redis.RedisError:
        return False
    return stored and principal["name"] == http.api_client.name and server.exists(key) == 0


_addresses = itertools.count()


def _token_failures_counted_then_locked_out(server: redis.Redis, **_) -> bool:
    number = next(_addresses)
    address = f"10.77.{number // 250}.{number % 250 + 1}"
    security = caches[CACHE_ALIAS]
    if token_failure_record(address) is not None:
        return False
    counted = server.get(security.make_and_validate_key(f"token-failures:{address}")) == b"1"
    locked_for = token_failure_record(address)

    async def locked_async() -> bool:
        try:
            return await token_lockout_active_async(address)
        finally:
            await token_lockout_checks_drain()
            await aio.clients_close()

    return (counted and locked_for is not None
            and server.exists(security.make_and_validate_key(f"token-lockout:{address}")) == 1
            and token_lockout_remaining(address) is not None and asyncio.run(locked_async()))


def _staff_login_failure_counted(server: redis.Redis, *, client, **_) -> bool:
    number = next(_addresses)
    pattern = f"{caches[CACHE_ALIAS].key_prefix}:*:axes-*"
    before = len(server.keys(pattern))
    answer = client.post("/admin/login/", {"username": f"nobody-{number}", "password": "wrong"},
                         REMOTE_ADDR=f"10.78.{number // 250}.{number % 250 + 1}")
    # django-axes counts the failure in the security cache: new keys for this username and this address.
    return answer.status_code == 200 and len(server.keys(pattern)) > before


def _direct_write(server: redis.Redis, **_) -> bool:
    key = f"test-sentinel-direct-{uuid.uuid4().hex}"
    try:
        redis_direct(timeout=1.0).set(key, "1", ex=60)
    except redis.RedisError:
        return False
    return server.exists(key) == 1


def _ready(server: redis.Redis, *, client, **_) -> bool:
    connections = server.info("stats")["total_connections_received"]
    response = client.get("/readyz")
    return response.status_code == 200 and server.info("stats")["total_connections_received"] > connections


USES = {
    "cache": _cache_set_get,
    "rate limit": _rate_limit_counted,
    "rate limit, async batch": _rate_limit_counted_in_a_batch,
    "WebSocket ticket": _ws_ticket_issued_and_redeemed,
    "token failures and lockout": _token_failures_counted_then_locked_out,
    "staff login failures": _staff_login_failure_counted,
    "direct client": _direct_write,
    "readiness": _ready,
}


@pytest.mark.django_db
@pytest.mark.parametrize("kill_master", [False, True], ids=["sentinel-failover", "master-killed"])
def test_every_use_of_redis_follows_the_sentinels_master_through_a_failover(on_the_sentinels, kill_master,
                                                                            api_client_with_scopes, client):
    fixtures = {"api_client_with_scopes": api_client_with_scopes, "client": client}
    with redis.Redis(port=on_the_sentinels.master_port) as master:
        assert {name: use(master, **fixtures) for name, use in USES.items()} == dict.fromkeys(USES, True)

    on_the_sentinels.fail_over(kill_master=kill_master)

    # A use's first calls may meet a connection to the old master, or the "Redis known down" mark a failed
    # call left for a second (degraded as in an outage): each is tried until it works, on the new master.
    with redis.Redis(port=on_the_sentinels.replica_port) as promoted:
        for name, use in USES.items():
            wait_for(partial(use, promoted, **fixtures), f"{name}: never worked on the promoted replica")
        assert promoted.info("replication")["role"] == "master"
