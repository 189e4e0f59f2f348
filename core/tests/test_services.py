"""Tests of the API client services: the locations a client is limited to are checked when stored, and staff
limited to some locations give only theirs."""
import pytest

from core.errors import LocationForbidden, UnknownLocation, ValidationFailed
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


# --- who may give a client which locations ------------------------------------------------------------------


@pytest.fixture
def two_stores():
    from inventory.tests.factories import stores_stocking

    return stores_stocking()


def _limited_staff(*locations):
    from inventory.tests.factories import staff_at

    return staff_at(*locations)


def test_staff_limited_to_a_store_give_a_client_their_store(two_stores):
    store_a, _store_b = two_stores

    client, _token = api_client_create(name="loja-a", scopes=["read"], location_codes=["loja-a"],
                                       user=_limited_staff(store_a))

    assert ApiClient.objects.get(pk=client.pk).location_codes == ["LOJA-A"]


@pytest.mark.parametrize("codes", [["LOJA-B"], ["LOJA-A", "LOJA-B"], []], ids=["other", "theirs-and-other", "every"])
def test_staff_limited_to_a_store_cannot_give_another_location_nor_every_one(two_stores, codes):
    store_a, _store_b = two_stores

    with pytest.raises(LocationForbidden) as refused:
        api_client_create(name="loja-x", scopes=["read"], location_codes=codes, user=_limited_staff(store_a))

    assert refused.value.code == "location_forbidden" and refused.value.status == 403
    assert refused.value.details == {"locations": [c for c in codes if c != "LOJA-A"], "allowed": ["LOJA-A"]}
    assert not ApiClient.objects.filter(name="loja-x").exists()


def test_staff_limited_to_a_store_cannot_change_a_client_of_another_one(two_stores):
    store_a, _store_b = two_stores
    other, _token = api_client_create(name="loja-b", scopes=["read"], location_codes=["LOJA-B"])
    mine, _token = api_client_create(name="loja-a", scopes=["read"], location_codes=["LOJA-A"])
    staff = _limited_staff(store_a)

    with pytest.raises(LocationForbidden):
        api_client_update(client=other, name="loja-b", scopes=["read"], location_codes=["LOJA-A"], active=True,
                          user=staff)
    with pytest.raises(LocationForbidden):
        api_client_update(client=mine, name="loja-a", scopes=["read"], location_codes=["LOJA-B"], active=True,
                          user=staff)
    api_client_update(client=mine, name="loja-a", scopes=["read", "reserve"], location_codes=["LOJA-A"], active=True,
                      user=staff)

    assert dict(ApiClient.objects.values_list("name", "location_codes")) == {"loja-a": ["LOJA-A"],
                                                                            "loja-b": ["LOJA-B"]}
    assert ApiClient.objects.get(name="loja-a").scopes == ["read", "reserve"]


@pytest.mark.parametrize("who", ["superuser", "staff-listed-nowhere"])
def test_superusers_and_staff_listed_at_no_location_give_any_locations(two_stores, django_user_model, who):
    user = django_user_model.objects.create_user(username=who, password="x", is_staff=True,
                                                 is_superuser=who == "superuser")

    everywhere, _token = api_client_create(name="tudo", scopes=["read"], location_codes=[], user=user)
    store_b, _token = api_client_create(name="loja-b", scopes=["read"], location_codes=["LOJA-B"], user=user)
    api_client_update(client=store_b, name="loja-b", scopes=["read"], location_codes=["LOJA-A", "LOJA-B"],
                      active=True, user=user)

    assert dict(ApiClient.objects.values_list("name", "location_codes")) == {"tudo": [],
                                                                            "loja-b": ["LOJA-A", "LOJA-B"]}
