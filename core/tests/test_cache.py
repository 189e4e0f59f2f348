"""Process-wide Redis clients: one per purpose and timeout, reused by every call, talking to the real Redis."""
from core.cache import redis_direct


def test_redis_direct_is_built_once_per_timeout_and_reaches_redis():
    first, again, other = redis_direct(timeout=1.0), redis_direct(timeout=1.0), redis_direct(timeout=2)

    assert first is again and first is not other
    assert first.connection_pool.connection_kwargs["socket_timeout"] == 1.0
    assert other.connection_pool.connection_kwargs["socket_timeout"] == 2
    assert first.ping() is True
