"""Tests for the per-process API client cache behind bearer authentication."""
import pytest

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
