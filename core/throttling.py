"""Per-client rate limits kept in Redis, so every server process counts together.

A fixed window per client: one pipelined INCR + EXPIRE per request, O(1) whatever the rate.
(DRF's SimpleRateThrottle keeps the whole request history in the cache and rewrites it on every
request, which costs more CPU the busier a client is: the wrong shape for a storefront.)

While Redis is down the limits fail open to a count kept in each process (same windows, same
limits): a client is still held to its rate per process, and no request fails for want of Redis.
"""
import threading
import time

from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError
from rest_framework.throttling import BaseThrottle

from core.cache import redis_circuit
from core.models import ApiClient

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def rate_parse(rate: str) -> tuple[int, int]:
    """'6000/min' -> (6000, 60)."""
    count, period = rate.split("/")
    return int(count), _PERIODS[period.strip()[0]]


def client_rate_window(identity: str, scope: str = "client") -> tuple[str, int, int, float] | None:
    """(Redis key, limit, period, now) of this identity's current window; None when the scope has no rate.

    Read at call time so a settings change applies without restarting anything.
    """
    rate = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"].get(scope)
    if not rate:
        return None
    limit, period = rate_parse(rate)
    now = time.time()
    key = cache.make_and_validate_key(f"throttle:{scope}:{identity}:{int(now // period)}")
    return key, limit, period, now


_local_counts: dict[str, int] = {}
_local_counts_lock = threading.Lock()


def local_window_count(key: str, increment: int = 1) -> int:
    """This process's own count for a window key, kept while Redis is down (the keys name their window,
    so a new window starts from zero; old ones go when the table grows past its bound)."""
    with _local_counts_lock:
        if len(_local_counts) > 10_000:
            _local_counts.clear()
        count = _local_counts[key] = _local_counts.get(key, 0) + increment
    return count


def window_count(key: str, period: int) -> int:
    """Count one more request in this window and return the count: in Redis, or locally while it is down."""
    if not redis_circuit.is_down():
        try:
            # The cache's shared client (core/cache.py): the sentinels' master when they are set.
            pipe = cache._cache.get_client(key, write=True).pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, period + 1, nx=True)
            count, _ = pipe.execute()
        except RedisError as exc:
            redis_circuit.mark_down(exc)
        else:
            redis_circuit.mark_up()
            return count
    return local_window_count(key)


async def _counts_in_redis(redis_client, per_key: dict[str, list[int]], periods: dict[str, int]) -> list[int]:
    async with redis_client.pipeline(transaction=False) as pipe:
        for key, indexes in per_key.items():
            pipe.incrby(key, len(indexes))
            pipe.expire(key, periods[key] + 1, nx=True)
        replies = await pipe.execute()
    return replies[::2]


async def client_rates_allow_async(redis_client, clients: list[ApiClient]) -> list[bool]:
    """The throttle's check for many requests at once from async code (the reservation fast path's
    batches): the same windows and keys, one pipelined round trip for the whole batch.

    ``clients[i]`` made request ``i``; requests of one client are counted in the order given, so the
    answers are those the throttle would give to the same requests one by one.
    """
    per_key: dict[str, list[int]] = {}
    periods: dict[str, int] = {}
    limits: dict[str, int] = {}
    allowed = [True] * len(clients)
    for index, client in enumerate(clients):
        window = client_rate_window(f"client-{client.pk}")
        if window is None:
            continue
        key, limit, period, _ = window
        per_key.setdefault(key, []).append(index)
        periods[key], limits[key] = period, limit
    if not per_key:
        return allowed
    counts = None
    if not redis_circuit.is_down():
        try:
            counts = await _counts_in_redis(redis_client, per_key, periods)
        except RedisError as exc:
            redis_circuit.mark_down(exc)
        else:
            redis_circuit.mark_up()
    if counts is None:
        counts = [local_window_count(key, len(indexes)) for key, indexes in per_key.items()]
    for (key, indexes), count in zip(per_key.items(), counts):
        # This batch's requests of the key hold counts count-len+1 .. count.
        first = count - len(indexes) + 1
        for offset, index in enumerate(indexes):
            allowed[index] = first + offset <= limits[key]
    return allowed


class ClientRateThrottle(BaseThrottle):
    scope = "client"

    def __init__(self) -> None:
        self._wait = 0.0

    def _identity(self, request) -> str:
        user = request.user
        if isinstance(user, ApiClient):
            return f"client-{user.pk}"
        if user and user.is_authenticated:
            return f"user-{user.pk}"
        return f"ip-{self.get_ident(request)}"

    def allow_request(self, request, view) -> bool:
        window = client_rate_window(self._identity(request), self.scope)
        if window is None:
            return True
        key, limit, period, now = window
        if window_count(key, period) <= limit:
            return True
        self._wait = (int(now // period) + 1) * period - now
        return False

    def wait(self) -> float:
        return self._wait
