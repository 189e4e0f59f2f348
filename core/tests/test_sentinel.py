"""Redis behind Sentinel (REDIS_SENTINELS): the channel layer and the Celery broker find the master through a
sentinel, and after a failover the layer carries group messages through the promoted replica."""
import asyncio
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from channels_redis.pubsub import RedisPubSubChannelLayer

from core.redis_sentinel import channel_layer_hosts, sentinels_parse
from core.tests.outage import ThrowawayRedis, free_port
from core.tests.polling import wait_for

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

    def sentinel(self) -> redis.Redis:
        return redis.Redis(port=self.sentinel_port, decode_responses=True, socket_timeout=5)

    def master_port_now(self) -> int:
        with self.sentinel() as client:
            return int(client.execute_command("SENTINEL", "get-master-addr-by-name", MASTER)[1])

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
        found = Sentinelled(master_port, replica_port, sentinel_port)
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

        with sentinelled.sentinel() as client:
            client.execute_command("SENTINEL", "FAILOVER", MASTER)
        await asyncio.to_thread(wait_for, lambda: sentinelled.master_port_now() == sentinelled.replica_port,
                                "the sentinel did not promote the replica")
        with redis.Redis(port=sentinelled.replica_port, decode_responses=True) as promoted:
            await asyncio.to_thread(wait_for, lambda: promoted.info("replication")["role"] == "master",
                                    "the replica did not become master")

        # The layer's connections to the old master are dropped on their next use; a new group then works.
        for _ in range(100):
            if await _round_trip(layer, "stock.after"):
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the layer never sent through the promoted replica")
        # The old master was turned into a replica: what the layer just sent cannot have gone there.
        with redis.Redis(port=sentinelled.master_port, decode_responses=True) as old:
            await asyncio.to_thread(wait_for, lambda: old.info("replication")["role"] == "slave",
                                    "the sentinel did not turn the old master into a replica")
    finally:
        await layer.flush()
