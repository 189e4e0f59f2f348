"""Tests of the API client services: the locations a client is limited to are checked when stored."""
import pytest

from core.errors import UnknownLocation, ValidationFailed
from core.models import ApiClient
from core.services import api_client_create, api_client_update
from inventory.tests.factories import LocationFactory

pytestmark = pytest.mark.django_db


def test_a_client_is_created_limited_to_active_locations_named_in_any_case():
    LocationFactory(code="DARK-ZS")

    client, _token = api_client_create(name="loja-zs", scopes=["read"], location_codes=["dark-zs", "DARK-ZS"])

    assert ApiClient.objects.get(pk=client.pk).location_codes == ["DARK-ZS"]


def test_a_client_naming_an_unknown_or_inactive_location_is_not_created():
    LocationFactory(code="OLD-1", active=False)

    with pytest.raises(UnknownLocation) as refused:
        api_client_create(name="loja-x", scopes=["read"], location_codes=["NOWHERE", "OLD-1"])

    assert refused.value.details == {"locations": ["NOWHERE", "OLD-1"]}
    assert not ApiClient.objects.filter(name="loja-x").exists()


def test_a_client_update_checks_locations_scopes_and_name_and_keeps_the_token():
    LocationFactory(code="DARK-ZS")
    client, _token = api_client_create(name="loja-a", scopes=["read"])
    api_client_create(name="loja-b", scopes=["read"])
    token_before = client.token_hash

    with pytest.raises(UnknownLocation):
        api_client_update(client=client, name="loja-a", scopes=["read"], location_codes=["NOWHERE"], active=True)
    with pytest.raises(ValidationFailed):
        api_client_update(client=client, name="loja-b", scopes=["read"], location_codes=[], active=True)
    with pytest.raises(ValidationFailed):
        api_client_update(client=client, name="loja-a", scopes=["fly"], location_codes=[], active=True)
    assert ApiClient.objects.get(pk=client.pk).location_codes == []

    api_client_update(client=client, name="loja-a2", scopes=["reserve", "read"], location_codes=["dark-zs"],
                      active=False)

    stored = ApiClient.objects.get(pk=client.pk)
    assert (stored.name, stored.scopes, stored.location_codes, stored.active, stored.token_hash) == (
        "loja-a2", ["read", "reserve"], ["DARK-ZS"], False, token_before)
