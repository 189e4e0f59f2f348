"""Per-client rate limits in Redis: a batch of requests is counted as if they came one by one."""
import pytest
from asgiref.sync import sync_to_async

from core import aio
from core.tests.factories import ApiClientFactory
from core.throttling import client_rate_window, client_rates_allow_async

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def three_a_day(settings):
    # A day-long window, so a minute boundary cannot split the test's requests.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"client": "3/day"}}


async def test_a_batch_is_counted_per_client_in_the_order_given(three_a_day):
    first, second = await sync_to_async(ApiClientFactory)(), await sync_to_async(ApiClientFactory)()
    redis = aio.redis_client()
    key = client_rate_window(f"client-{first.pk}")[0]
    assert await redis.get(key) is None

    allowed = await client_rates_allow_async(redis, [first, first, second, first, first])
    later = await client_rates_allow_async(redis, [second, first])

    assert allowed == [True, True, True, True, False]
    assert later == [True, False]
    assert int(await redis.get(key)) == 5
    assert 0 < await redis.ttl(key) <= 86400 + 1
    await aio.clients_close()


async def test_no_rate_configured_allows_everything_without_a_round_trip(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {}}
    client = await sync_to_async(ApiClientFactory)()

    class NoRedis:
        def pipeline(self, **_):
            raise AssertionError("no Redis call expected")

    assert await client_rates_allow_async(NoRedis(), [client, client]) == [True, True]
