"""Brute-force protection: unknown bearer tokens lock an address out (429), failed staff logins lock an
account or an address out, the client's address behind proxies, and both limits failing open without Redis."""
import socket
import time
from datetime import timedelta

import pytest
import redis
from django.conf import settings as django_settings
from django.core.management import call_command
from rest_framework.test import APIClient

from config.settings import base
from core.security import client_address
from core.tests.factories import ApiClientFactory

pytestmark = pytest.mark.django_db

READ_URL = "/api/v1/stock/"
LOGIN_URL = "/admin/login/"


@pytest.fixture(autouse=True)
def _shipped_limits(settings):
    """The limits as shipped (the test settings raise the token one for the rest of the suite), and no
    counter or lockout of this test left behind for the next."""
    settings.TOKEN_FAILURE_LIMIT = base.TOKEN_FAILURE_LIMIT
    settings.TOKEN_FAILURE_WINDOW_SECONDS = base.TOKEN_FAILURE_WINDOW_SECONDS
    settings.TOKEN_LOCKOUT_SECONDS = base.TOKEN_LOCKOUT_SECONDS
    settings.AXES_FAILURE_LIMIT = base.AXES_FAILURE_LIMIT
    settings.AXES_COOLOFF_TIME = base.AXES_COOLOFF_TIME
    yield
    limits_forget()


def limits_forget() -> None:
    """Delete this run's failure counters and lockouts (tokens and logins) from Redis."""
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    prefix = django_settings.CACHES["security"]["KEY_PREFIX"]
    for pattern in (f"{prefix}:*:token-*", f"{prefix}:*:axes-*"):
        for key in client.scan_iter(pattern, count=1000):
            client.delete(key)
    client.close()


@pytest.fixture
def unreachable_redis(settings):
    """The limits' Redis on a port where nothing listens (the shared Redis keeps running)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.CACHES = {**settings.CACHES,
                       "security": {**settings.CACHES["security"], "LOCATION": f"redis://127.0.0.1:{port}/0"}}


def _bearer(token: str, address: str, **extra):
    return APIClient().get(READ_URL, HTTP_AUTHORIZATION=f"Bearer {token}", REMOTE_ADDR=address, **extra)


def _wrong_tokens(address: str, count: int, **extra) -> list[int]:
    return [_bearer(f"sp_guess{n}", address, **extra).status_code for n in range(count)]


# Bearer tokens

def test_unknown_tokens_from_one_address_end_in_429_with_retry_after():
    limit = base.TOKEN_FAILURE_LIMIT

    before = _wrong_tokens("10.1.0.1", limit - 1)
    locked = _bearer("sp_one-more", "10.1.0.1", HTTP_ACCEPT_LANGUAGE="en")

    assert before == [401] * (limit - 1)
    assert locked.status_code == 429
    error = locked.json()["error"]
    assert error["code"] == "rate_limited"
    assert 0 < int(locked["Retry-After"]) <= base.TOKEN_LOCKOUT_SECONDS
    assert error["details"] == {"retry_after": locked["Retry-After"]}
    assert error["message"] == f"Too many invalid bearer tokens from this address: try again in {locked['Retry-After']} seconds."
    assert _bearer("sp_and-another", "10.1.0.1").status_code == 429


def test_another_address_is_unaffected_by_a_lockout():
    storefront = ApiClientFactory(scopes=["read"])
    _wrong_tokens("10.1.0.2", base.TOKEN_FAILURE_LIMIT)
    assert _bearer("sp_guess", "10.1.0.2").status_code == 429

    assert _bearer(storefront.raw_token, "10.1.0.3").status_code == 200
    assert _bearer("sp_guess", "10.1.0.3").status_code == 401


def test_a_valid_token_from_a_locked_out_address_is_refused_too():
    storefront = ApiClientFactory(scopes=["read"])
    assert _bearer(storefront.raw_token, "10.1.0.4").status_code == 200

    _wrong_tokens("10.1.0.4", base.TOKEN_FAILURE_LIMIT)
    refused = _bearer(storefront.raw_token, "10.1.0.4")

    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"


def test_the_lockout_ends_after_its_time(settings):
    settings.TOKEN_FAILURE_LIMIT, settings.TOKEN_LOCKOUT_SECONDS = 2, 1
    storefront = ApiClientFactory(scopes=["read"])
    _wrong_tokens("10.1.0.5", 2)
    assert _bearer(storefront.raw_token, "10.1.0.5").status_code == 429

    time.sleep(1.1)

    assert _bearer(storefront.raw_token, "10.1.0.5").status_code == 200


def test_the_websocket_ticket_route_is_locked_out_too():
    storefront = ApiClientFactory(scopes=["read"])
    _wrong_tokens("10.1.0.9", base.TOKEN_FAILURE_LIMIT)

    ticket = APIClient().post("/api/v1/ws-ticket", HTTP_AUTHORIZATION=f"Bearer {storefront.raw_token}",
                              REMOTE_ADDR="10.1.0.9")

    assert ticket.status_code == 429
    assert ticket.json()["error"]["code"] == "rate_limited"


def test_token_unlock_lifts_a_lockout_before_its_end(capsys):
    storefront = ApiClientFactory(scopes=["read"])
    _wrong_tokens("10.1.0.8", base.TOKEN_FAILURE_LIMIT)
    assert _bearer(storefront.raw_token, "10.1.0.8").status_code == 429

    call_command("token_unlock", "10.1.0.8")

    assert "Bearer tokens from 10.1.0.8 are accepted again." in capsys.readouterr().out
    assert _bearer(storefront.raw_token, "10.1.0.8").status_code == 200
    assert _wrong_tokens("10.1.0.8", base.TOKEN_FAILURE_LIMIT - 1)[-1] == 401  # counting starts afresh


def test_a_made_up_x_forwarded_for_does_not_dodge_the_lockout_without_trusted_proxies():
    statuses = [_bearer(f"sp_guess{n}", "10.1.0.6", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code
                for n in range(base.TOKEN_FAILURE_LIMIT)]

    assert statuses[-1] == 429


def test_behind_a_trusted_proxy_each_client_is_counted_apart(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    storefront = ApiClientFactory(scopes=["read"])
    # The proxy appends the address it saw; what the client wrote before it does not count.
    statuses = [_bearer(f"sp_guess{n}", "10.0.0.1", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}, 203.0.113.7").status_code
                for n in range(base.TOKEN_FAILURE_LIMIT)]

    assert statuses[-1] == 429
    assert _bearer(storefront.raw_token, "10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 429
    assert _bearer(storefront.raw_token, "10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.8").status_code == 200


def test_an_unreachable_redis_lets_tokens_through_unlimited(unreachable_redis):
    storefront = ApiClientFactory(scopes=["read"])

    statuses = _wrong_tokens("10.1.0.7", base.TOKEN_FAILURE_LIMIT + 5)

    assert statuses == [401] * (base.TOKEN_FAILURE_LIMIT + 5)
    assert _bearer(storefront.raw_token, "10.1.0.7").status_code == 200


@pytest.mark.parametrize(("proxies", "remote", "forwarded", "address"), [
    (0, "10.0.0.1", "", "10.0.0.1"),
    (0, "10.0.0.1", "203.0.113.7", "10.0.0.1"),
    (1, "10.0.0.1", "198.51.100.1, 203.0.113.7", "203.0.113.7"),
    (2, "10.0.0.1", "198.51.100.1, 203.0.113.7, 10.0.0.2", "203.0.113.7"),
    (2, "10.0.0.1", "203.0.113.7", "203.0.113.7"),
    (1, "10.0.0.1", "", "10.0.0.1"),
])
def test_client_address_trusts_only_the_configured_proxies(settings, proxies, remote, forwarded, address):
    settings.TRUSTED_PROXY_COUNT = proxies

    assert client_address(remote, forwarded) == address


# Staff logins (django-axes)

@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user(username="boss", password="right-pass-123", is_staff=True)


def _login(client, username: str, password: str, address: str):
    return client.post(LOGIN_URL, {"username": username, "password": password, "next": "/admin/"},
                       REMOTE_ADDR=address, HTTP_ACCEPT_LANGUAGE="en")


def _logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_wrong_passwords_for_one_account_lock_it_out_the_right_password_included(client, staff):
    limit = base.AXES_FAILURE_LIMIT
    # From a new address each time: the account's own count locks it.
    statuses = [_login(client, "boss", f"wrong-{n}", f"10.2.0.{n}").status_code for n in range(40)]

    refused = _login(client, "boss", "right-pass-123", "10.2.1.1")

    assert statuses == [200] * (limit - 1) + [429] * (40 - limit + 1)
    assert refused.status_code == 429
    assert not _logged_in(client)
    page = refused.content.decode()
    assert 'id="login-locked"' in page
    assert "Too many failed logins for this username or from this address" in page
    assert "the right password included, for up to 15 minutes" in page
    assert 'id="login-form"' in page  # still the login page, with its form
    assert refused["Retry-After"] == str(15 * 60)


def test_wrong_logins_from_one_address_lock_the_address_out(client, staff):
    limit = base.AXES_FAILURE_LIMIT
    statuses = [_login(client, f"guess{n}", "wrong", "10.3.0.1").status_code for n in range(40)]

    from_there = _login(client, "boss", "right-pass-123", "10.3.0.1")
    assert statuses == [200] * (limit - 1) + [429] * (40 - limit + 1)
    assert from_there.status_code == 429
    assert not _logged_in(client)

    elsewhere = _login(client, "boss", "right-pass-123", "10.3.0.2")
    assert elsewhere.status_code == 302
    assert _logged_in(client)


def test_a_login_lockout_ends_after_its_cool_off(client, staff, settings):
    settings.AXES_FAILURE_LIMIT, settings.AXES_COOLOFF_TIME = 2, timedelta(seconds=1)
    _login(client, "boss", "wrong", "10.4.0.1")
    _login(client, "boss", "wrong", "10.4.0.1")
    assert _login(client, "boss", "right-pass-123", "10.4.0.1").status_code == 429

    time.sleep(1.1)

    assert _login(client, "boss", "right-pass-123", "10.4.0.1").status_code == 302
    assert _logged_in(client)


def test_logins_refused_during_a_lockout_do_not_prolong_it(client, staff, settings):
    settings.AXES_FAILURE_LIMIT, settings.AXES_COOLOFF_TIME = 2, timedelta(seconds=1)
    _login(client, "boss", "wrong", "10.4.1.1")
    _login(client, "boss", "wrong", "10.4.1.1")
    time.sleep(0.6)
    assert _login(client, "boss", "wrong", "10.4.1.1").status_code == 429

    time.sleep(0.6)  # 1.2 s after the last counted failure, 0.6 s after the refused one

    assert _login(client, "boss", "right-pass-123", "10.4.1.1").status_code == 302


def test_the_lockout_page_is_in_the_stores_language(client, staff, settings):
    settings.AXES_FAILURE_LIMIT = 1

    answer = client.post(LOGIN_URL, {"username": "boss", "password": "wrong"}, REMOTE_ADDR="10.7.0.1")

    assert answer.status_code == 429
    assert "mesmo com a senha certa, por até 15 minutos" in answer.content.decode()


def test_axes_reset_username_lifts_an_account_lockout(client, staff):
    for n in range(base.AXES_FAILURE_LIMIT):
        _login(client, "boss", "wrong", f"10.8.0.{n}")
    assert _login(client, "boss", "right-pass-123", "10.8.1.1").status_code == 429

    call_command("axes_reset_username", "boss")

    assert _login(client, "boss", "right-pass-123", "10.8.1.1").status_code == 302


def test_axes_reset_ip_lifts_an_address_lockout(client, staff):
    for n in range(base.AXES_FAILURE_LIMIT):
        _login(client, f"guess{n}", "wrong", "10.8.2.1")
    assert _login(client, "boss", "right-pass-123", "10.8.2.1").status_code == 429

    call_command("axes_reset_ip", "10.8.2.1")

    assert _login(client, "boss", "right-pass-123", "10.8.2.1").status_code == 302


def test_a_login_without_a_request_is_judged_by_the_password_alone(client, staff):
    assert client.login(username="boss", password="wrong") is False
    assert client.login(username="boss", password="right-pass-123") is True


def test_a_wrong_password_below_the_limit_is_the_usual_form_error(client, staff):
    answer = _login(client, "boss", "wrong", "10.5.0.1")

    assert answer.status_code == 200
    assert 'id="login-locked"' not in answer.content.decode()
    assert "Please enter the correct username and password" in answer.content.decode()


def test_an_unreachable_redis_lets_logins_through_unlimited(client, staff, unreachable_redis):
    statuses = [_login(client, "boss", f"wrong-{n}", "10.6.0.1").status_code for n in range(base.AXES_FAILURE_LIMIT + 5)]

    assert statuses == [200] * (base.AXES_FAILURE_LIMIT + 5)
    assert _login(client, "boss", "right-pass-123", "10.6.0.1").status_code == 302
    assert _logged_in(client)
