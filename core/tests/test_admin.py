"""The API clients admin: location codes checked and kept; staff limited to locations manage only clients
limited to some of theirs."""
import pytest

from core.models import ApiClient
from core.tests.factories import ApiClientFactory
from inventory.tests.factories import staff_at, stores_stocking

pytestmark = pytest.mark.django_db

ADD = "/admin/core/apiclient/add/"


@pytest.fixture
def stores():
    return stores_stocking()


def _client_form(name: str, codes: str) -> dict:
    return {"name": name, "scopes": '["read"]', "location_codes": codes, "active": "on"}


def test_a_new_client_keeps_its_locations(client, staff_user, stores):
    client.force_login(staff_user)

    response = client.post(ADD, _client_form("loja-a-site", "loja-a"))

    assert response.status_code == 302
    assert ApiClient.objects.get(name="loja-a-site").location_codes == ["LOJA-A"]


def test_an_unknown_location_code_is_a_form_error(client, staff_user, stores):
    client.force_login(staff_user)

    response = client.post(ADD, _client_form("perdido", "LOJA-A,NOWHERE"))

    assert response.status_code == 200 and "NOWHERE" in str(response.context["adminform"].form.errors)
    assert not ApiClient.objects.filter(name="perdido").exists()


def test_limited_staff_see_only_clients_limited_to_their_locations(client, stores):
    theirs = ApiClientFactory(location_codes=["LOJA-A"])
    ApiClientFactory(location_codes=["LOJA-A", "LOJA-B"])
    ApiClientFactory(location_codes=[])
    client.force_login(staff_at(stores[0]))

    page = client.get("/admin/core/apiclient/")

    assert [c.pk for c in page.context["cl"].result_list] == [theirs.pk]


def test_limited_staff_cannot_make_a_client_for_every_location_or_another_one(client, stores):
    client.force_login(staff_at(stores[0]))

    unlimited = client.post(ADD, _client_form("tudo", ""))
    elsewhere = client.post(ADD, _client_form("outra", "LOJA-B"))
    theirs = client.post(ADD, _client_form("minha", "LOJA-A"))

    assert unlimited.status_code == 200 and elsewhere.status_code == 200
    assert theirs.status_code == 302
    assert list(ApiClient.objects.values_list("name", flat=True)) == ["minha"]


def test_limited_staff_changing_their_client_to_another_location_get_the_services_refusal_as_a_form_error(
        client, stores):
    theirs = ApiClientFactory(name="loja-a-site", scopes=["read"], location_codes=["LOJA-A"])
    client.force_login(staff_at(stores[0]))

    response = client.post(f"/admin/core/apiclient/{theirs.pk}/change/", _client_form("loja-a-site", "LOJA-B"))

    assert response.status_code == 200
    assert "LOJA-A" in str(response.context["adminform"].form.errors["location_codes"])
    assert ApiClient.objects.get(pk=theirs.pk).location_codes == ["LOJA-A"]
