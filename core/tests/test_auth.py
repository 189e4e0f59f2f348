"""Tests for API authentication and scopes: no credentials 401, bad token 401, missing scope 403."""
import pytest

from core.models import ApiClient
from inventory.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db

READ_URL = "/api/v1/stock/"
MANAGE_URL = "/api/v1/stock/A-1/movements"
MANAGE_BODY = {"kind": "receipt", "quantity": 1, "reason": "r"}


@pytest.fixture(autouse=True)
def product():
    return ProductFactory(code="A-1")


def test_no_credentials_is_401_with_challenge(client):
    response = client.get(READ_URL)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer sp_wrong", "Token abc", "Bearer", "Bearer a b"])
def test_bad_credentials_are_401(client, header):
    response = client.get(READ_URL, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_inactive_client_is_401(api_client_with_scopes):
    http = api_client_with_scopes("read")
    ApiClient.objects.filter(pk=http.api_client.pk).update(active=False)
    assert http.get(READ_URL).status_code == 401


@pytest.mark.parametrize(
    "scopes, read_status, manage_status",
    [
        (("read",), 200, 403),
        (("reserve",), 403, 403),
        (("manage",), 403, 201),
        (("read", "reserve", "manage"), 200, 201),
    ],
)
def test_scope_matrix(api_client_with_scopes, scopes, read_status, manage_status):
    http = api_client_with_scopes(*scopes)

    read = http.get(READ_URL)
    manage = http.post(MANAGE_URL, MANAGE_BODY, format="json")

    assert read.status_code == read_status
    assert manage.status_code == manage_status
    if manage_status == 403:
        assert manage.json()["error"]["code"] == "permission_denied"


def test_staff_session_may_use_the_api(client, staff_user):
    client.force_login(staff_user)
    assert client.get(READ_URL).status_code == 200


def test_non_staff_session_lacks_scopes(client, django_user_model):
    user = django_user_model.objects.create_user(username="clerk", password="pw-123456789")
    client.force_login(user)
    assert client.get(READ_URL).status_code == 403


def test_tokens_are_stored_hashed(api_client_with_scopes):
    http = api_client_with_scopes("read")
    stored = ApiClient.objects.get(pk=http.api_client.pk)
    assert http.api_client.raw_token not in (stored.token_hash, stored.token_hint)
    assert len(stored.token_hash) == 64
