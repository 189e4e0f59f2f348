"""Tests for the per-process API client cache behind bearer authentication."""
import asyncio
import time

import pytest
from asgiref.sync import sync_to_async

from core import auth
from core.tests.factories import ApiClientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_cache():
    auth._client_cache.clear()
    yield
    auth._client_cache.clear()


def test_cached_lookup_skips_the_query_within_ttl(settings, django_assert_num_queries):
    settings.API_CLIENT_CACHE_SECONDS = 5
    record = ApiClientFactory()
    assert auth.api_client_for_token(record.raw_token) == record

    with django_assert_num_queries(0):
        assert auth.api_client_for_token(record.raw_token) == record


def test_without_ttl_every_lookup_sees_deactivation(settings):
    settings.API_CLIENT_CACHE_SECONDS = 0
    record = ApiClientFactory()
    assert auth.api_client_for_token(record.raw_token) == record

    record.active = False
    record.save(update_fields=["active"])

    assert auth.api_client_for_token(record.raw_token) is None


def test_unknown_token_is_not_cached(settings, django_assert_num_queries):
    settings.API_CLIENT_CACHE_SECONDS = 5
    assert auth.api_client_for_token("sp_nope") is None
    with django_assert_num_queries(1):
        assert auth.api_client_for_token("sp_nope") is None


# ---------------------------------------------------------------- renewal ahead of expiry (server loop)

async def _cached_then_due(settings, ttl: float):
    """A client cached by a lookup, then the time passed until its refresh is due (not its expiry)."""
    settings.API_CLIENT_CACHE_SECONDS = ttl
    record = await sync_to_async(ApiClientFactory)()
    assert await sync_to_async(auth.api_client_for_token)(record.raw_token) == record
    _, expires, refresh_at = auth._client_cache[auth.token_hash(record.raw_token)]
    await asyncio.sleep(refresh_at - time.monotonic() + 0.05)
    assert time.monotonic() < expires
    return record, expires


@pytest.mark.django_db(transaction=True)
async def test_a_token_in_use_is_renewed_in_the_background_before_it_expires(settings):
    record, expires = await _cached_then_due(settings, ttl=1.0)

    assert auth.api_client_cached(record.raw_token) == record  # answered from the cache, no wait
    await auth.api_clients_refresh_drain()

    _, renewed_expiry, _ = auth._client_cache[auth.token_hash(record.raw_token)]
    assert renewed_expiry > expires
    await asyncio.sleep(max(expires + 0.05 - time.monotonic(), 0))
    assert auth.api_client_cached(record.raw_token) == record  # past the old expiry: still cached
    await auth.api_clients_refresh_drain()


@pytest.mark.django_db(transaction=True)
async def test_the_renewal_drops_a_client_deactivated_meanwhile(settings):
    record, _ = await _cached_then_due(settings, ttl=1.0)
    record.active = False
    await sync_to_async(record.save)(update_fields=["active"])

    assert auth.api_client_cached(record.raw_token) == record  # still within its TTL
    await auth.api_clients_refresh_drain()

    assert auth.token_hash(record.raw_token) not in auth._client_cache
    assert auth.api_client_cached(record.raw_token) is None
    assert await sync_to_async(auth.api_client_for_token)(record.raw_token) is None
