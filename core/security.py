"""Brute-force protection: the client's address, failed bearer tokens counted per address with a lockout, and the staff login's lockout (django-axes).

Counters live in Redis (the ``security`` cache) so every process counts together. They fail open: with
Redis unreachable nothing is counted or refused, a warning is logged (at most once a minute per
process), and requests are answered as if no limit existed, never with a 500.
"""
import logging
import math
import threading
import time

import redis
from axes.backends import AxesStandaloneBackend
from axes.handlers.cache import AxesCacheHandler
from axes.helpers import get_cache
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.core.cache import caches
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from core import aio

logger = logging.getLogger(__name__)

CACHE_ALIAS = "security"
_WARN_EVERY_SECONDS = 60.0
_warned_at = -_WARN_EVERY_SECONDS
_warned_lock = threading.Lock()


def _unreachable(what: str) -> None:
    global _warned_at
    with _warned_lock:
        now = time.monotonic()
        if now - _warned_at < _WARN_EVERY_SECONDS:
            return
        _warned_at = now
    logger.warning("Redis unreachable: %s not limited (fail open)", what, exc_info=True)


def client_address(remote_addr: str, forwarded_for: str) -> str:
    """The client's address: the peer's, or with TRUSTED_PROXY_COUNT proxies in front, the
    X-Forwarded-For entry written by the farthest of them (the entries left of it are the client's say)."""
    count = settings.TRUSTED_PROXY_COUNT
    addresses = [part.strip() for part in forwarded_for.split(",") if part.strip()]
    if count <= 0 or not addresses:
        return remote_addr
    return addresses[-min(count, len(addresses))]


def request_client_address(request) -> str:
    """The client's address of a Django (or DRF) request; django-axes asks this too."""
    return client_address(request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_X_FORWARDED_FOR", ""))


def scope_client_address(scope) -> str:
    """The client's address of an ASGI scope, by the same rule."""
    forwarded = b",".join(value for key, value in scope["headers"] if key == b"x-forwarded-for")
    return client_address((scope.get("client") or ("",))[0], forwarded.decode("latin-1"))


# Failed bearer tokens. A failure counter per address lives TOKEN_FAILURE_WINDOW_SECONDS from its first
# failure; the failure that reaches TOKEN_FAILURE_LIMIT replaces it with a lockout key holding the
# time the lockout ends, and until then no token from the address is looked up.

def _token_keys(address: str) -> tuple[str, str]:
    cache = caches[CACHE_ALIAS]
    return (cache.make_and_validate_key(f"token-failures:{address}"),
            cache.make_and_validate_key(f"token-lockout:{address}"))


def _redis():
    # The cache's own client (its pool and short timeouts); plain Redis commands, so the async
    # check below reads the same values.
    return caches[CACHE_ALIAS]._cache.get_client(write=True)


def _remaining(until: bytes | None) -> int | None:
    if until is None:
        return None
    left = math.ceil(float(until) - time.time())
    return left if left > 0 else None


def token_lockout_remaining(address: str) -> int | None:
    """Seconds until this address may present bearer tokens again; None when it is not locked out."""
    try:
        return _remaining(_redis().get(_token_keys(address)[1]))
    except redis.RedisError:
        _unreachable("bearer-token lockouts")
        return None


async def _lockouts_read(addresses: list[str]) -> list[bool]:
    keys = [_token_keys(address)[1] for address in addresses]
    try:
        untils = await aio.redis_client().mget(keys)
    except redis.RedisError:
        _unreachable("bearer-token lockouts")
        return [False] * len(addresses)
    return [_remaining(until) is not None for until in untils]


# On the server loop, concurrent checks share one MGET: one GET each would, in a burst, hold as many
# Redis connections as there are requests.
_lockout_checks = aio.LoopBatcher("token-lockout-checks", _lockouts_read, max_batch=1024)


async def token_lockout_active_async(address: str) -> bool:
    """Whether the address is locked out, for code on the server loop (this loop's Redis client)."""
    return await _lockout_checks.call(address)


async def token_lockout_checks_drain() -> None:
    """Answer this loop's pending checks and stop their task (tests, before their loop ends)."""
    await _lockout_checks.drain()


def token_failure_record(address: str) -> int | None:
    """Count one unknown bearer token from this address; the lockout's seconds if this one starts it."""
    failures_key, lockout_key = _token_keys(address)
    seconds = settings.TOKEN_LOCKOUT_SECONDS
    try:
        client = _redis()
        pipe = client.pipeline(transaction=False)
        pipe.incr(failures_key)
        pipe.expire(failures_key, settings.TOKEN_FAILURE_WINDOW_SECONDS, nx=True)
        failures, _ = pipe.execute()
        if failures < settings.TOKEN_FAILURE_LIMIT:
            return None
        pipe = client.pipeline(transaction=False)
        pipe.set(lockout_key, repr(time.time() + seconds), ex=seconds)
        pipe.delete(failures_key)
        pipe.execute()
    except redis.RedisError:
        _unreachable("bearer-token failures")
        return None
    logger.warning("bearer tokens from %s locked out for %s s after %s failures", address, seconds, failures)
    return seconds


def token_lockout_clear(address: str) -> bool:
    """Lift this address's lockout and forget its failures; whether it was locked out."""
    failures_key, lockout_key = _token_keys(address)
    pipe = _redis().pipeline(transaction=False)
    pipe.delete(lockout_key)
    pipe.delete(failures_key)
    lifted, _ = pipe.execute()
    return bool(lifted)


class LoginLockoutBackend(AxesStandaloneBackend):
    """django-axes' check, first of the authentication backends: refuses logins while locked out.

    A login without a request (the test client's ``login()``, a script) has no address to count and
    is left to the next backend, where axes' own backend would raise ValueError.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


class FailOpenAxesCacheHandler(AxesCacheHandler):
    """django-axes' cache handler, except that an unreachable Redis lets logins through (logged), unlimited,
    instead of failing them with a 500."""

    def __init__(self) -> None:
        pass  # no cache kept from start-up: axes keeps one handler for the process's life

    @property
    def cache(self):
        # Looked up on each use, as Django hands out cache objects per thread and per async context.
        return get_cache()

    def get_failures(self, request, credentials=None) -> int:
        try:
            return super().get_failures(request, credentials)
        except redis.RedisError:
            _unreachable("staff logins")
            return 0

    def user_login_failed(self, sender, credentials, request=None, **kwargs):
        try:
            return super().user_login_failed(sender, credentials, request, **kwargs)
        except redis.RedisError:
            _unreachable("staff logins")
            return None


def login_lockout_response(request, *args, **kwargs):
    """The admin login page, answered 429, saying the login is refused for a while and why.

    django-axes calls this with (request, response, credentials), or (request, credentials) from its
    async middleware: only the request is used.
    """
    minutes = math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60)
    message = ngettext(
        "Too many failed logins for this username or from this address: logins are refused, the right "
        "password included, for up to %(minutes)d minute. Try again later or ask another administrator.",
        "Too many failed logins for this username or from this address: logins are refused, the right "
        "password included, for up to %(minutes)d minutes. Try again later or ask another administrator.",
        minutes,
    ) % {"minutes": minutes}
    username = request.POST.get("username", "")
    context = {
        **admin.site.each_context(request),
        "title": _("Log in"),
        "subtitle": None,
        "app_path": request.get_full_path(),
        "form": AdminAuthenticationForm(request, initial={"username": username}),
        "username": username,
        "lockout_message": message,
        REDIRECT_FIELD_NAME: request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME, ""),
    }
    response = render(request, "admin/login_locked.html", context, status=429)
    response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response
