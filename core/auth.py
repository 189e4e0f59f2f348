"""API authentication (hashed bearer tokens) and the scope permission every API view declares."""
import asyncio
import logging
import threading
import time
import weakref

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import authentication, exceptions, permissions

from core.models import ApiClient, token_hash
from core.security import request_client_address, token_failure_record, token_lockout_remaining

logger = logging.getLogger(__name__)

# token hash -> (client, monotonic expiry, monotonic time from which a refresh is due). A per-process
# cache: the token lookup was one query on every API request. Deactivating a client takes effect
# within API_CLIENT_CACHE_SECONDS.
_client_cache: dict[str, tuple[ApiClient, float, float]] = {}
_client_cache_lock = threading.Lock()
# On the server loop (api_client_cached), a token in use is renewed in the background once this share
# of its TTL has passed, so busy tokens never expire on a request: a storefront's tokens are cached
# at about the same moment, and would otherwise expire together, each request of that moment waiting
# for a thread and a query (seen as the reservation latency tail).
REFRESH_AFTER_SHARE = 0.6
_refresh_due: set[str] = set()
_refreshing: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task]" = weakref.WeakKeyDictionary()


def _cache_put(hashed: str, client: ApiClient, now: float, ttl: float) -> None:
    if len(_client_cache) > 10_000:
        _client_cache.clear()
    _client_cache[hashed] = (client, now + ttl, now + ttl * REFRESH_AFTER_SHARE)


def api_client_for_token(raw_token: str) -> ApiClient | None:
    """The active client with this token, from the short per-process cache or the database."""
    hashed = token_hash(raw_token)
    ttl = getattr(settings, "API_CLIENT_CACHE_SECONDS", 0)
    now = time.monotonic()
    cached = _client_cache.get(hashed)
    if cached is not None and cached[1] > now:
        return cached[0]
    client = ApiClient.objects.filter(token_hash=hashed, active=True).first()
    if client is not None and ttl > 0:
        with _client_cache_lock:
            _cache_put(hashed, client, now, ttl)
    return client


def api_client_cached(raw_token: str) -> ApiClient | None:
    """The client from the per-process cache only (no query); None when not cached or expired there.

    For the server loop: a hit past its refresh time is renewed in the background (one refresh at a
    time per loop, one query for every token then due), so it stays cached while in use.
    """
    hashed = token_hash(raw_token)
    cached = _client_cache.get(hashed)
    if cached is None:
        return None
    now = time.monotonic()
    if cached[1] <= now:
        return None
    if cached[2] <= now:
        _refresh_due.add(hashed)
        _refresh_start()
    return cached[0]


def api_clients_refresh(hashes: list[str]) -> None:
    """One query for these cached tokens: the active ones get a new TTL, the others leave the cache."""
    ttl = getattr(settings, "API_CLIENT_CACHE_SECONDS", 0)
    now = time.monotonic()
    active = {c.token_hash: c for c in ApiClient.objects.filter(token_hash__in=hashes, active=True)}
    with _client_cache_lock:
        for hashed in hashes:
            client = active.get(hashed)
            if client is None or ttl <= 0:
                _client_cache.pop(hashed, None)
            else:
                _cache_put(hashed, client, now, ttl)


def _refresh_start() -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return  # not on a loop: the entry expires and the next lookup queries
    task = _refreshing.get(loop)
    if task is not None and not task.done():
        return
    hashes = sorted(_refresh_due)
    _refresh_due.clear()
    _refreshing[loop] = loop.create_task(_refresh(hashes), name="api-client-refresh")


async def _refresh(hashes: list[str]) -> None:
    from core import aio

    try:
        await aio.sync_read(api_clients_refresh, hashes)
    except Exception:
        # The entries then expire as usual and the next request for each looks it up.
        logger.warning("could not refresh %d cached API client(s)", len(hashes), exc_info=True)


async def api_clients_refresh_drain() -> None:
    """Wait for this loop's refresh, if one is running (tests, before their loop ends)."""
    task = _refreshing.pop(asyncio.get_running_loop(), None)
    if task is not None:
        await task


class TokenLockout(exceptions.Throttled):
    """Too many unknown bearer tokens from this address (core/security.py): 429 ``rate_limited``."""

    def __init__(self, *, wait: int) -> None:
        # One message of ours, rather than DRF's with its own (translated) sentence appended.
        exceptions.APIException.__init__(
            self, _("Too many invalid bearer tokens from this address: try again in %(wait)d seconds.")
            % {"wait": wait})
        self.wait = wait


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <token>``, with unknown tokens counted per client address.

    Past TOKEN_FAILURE_LIMIT of them the address is locked out: every bearer request from it, a valid
    token included, is answered 429 with Retry-After until the lockout ends, and no token is looked
    up meanwhile. Letting a valid token through would let a guess that hits through too.
    """

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if len(parts) != 2 or parts[0].lower() != self.keyword.lower():
            raise exceptions.AuthenticationFailed(_("Use 'Authorization: Bearer <token>'."))
        address = request_client_address(request)
        locked_for = token_lockout_remaining(address)
        if locked_for is not None:
            raise TokenLockout(wait=locked_for)
        client = api_client_for_token(parts[1])
        if client is None:
            locked_for = token_failure_record(address)
            if locked_for is not None:
                raise TokenLockout(wait=locked_for)
            raise exceptions.AuthenticationFailed(_("Invalid or inactive token."))
        return client, client

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'


def request_has_scope(request, scope: str) -> bool:
    user = request.user
    if isinstance(user, ApiClient):
        return user.has_scope(scope)
    # Staff signed in to the admin may do anything the API offers.
    return bool(user and user.is_authenticated and user.is_staff)


class HasScope(permissions.BasePermission):
    """Views set ``required_scope`` (or ``required_scopes`` per method); no scope set means authenticated only."""

    message = gettext_lazy("Your credentials lack the scope this operation needs.")

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        scope = getattr(view, "required_scopes", {}).get(request.method) or getattr(view, "required_scope", None)
        if scope is None:
            return True
        return request_has_scope(request, scope)


def request_client(request) -> ApiClient | None:
    """The API client acting; None for staff signed in with a session (their location limits come from
    request_location_scope)."""
    return request.user if isinstance(request.user, ApiClient) else None


def request_location_scope(request):
    """Whose location limits the request follows: the API client, or the staff user signed in with a
    session (limited by ``Location.staff_users``); None when nobody is signed in. Pass it as ``client``
    to the location selectors and the services' location checks, never where the ApiClient itself
    is needed (idempotency keys, ownership of reservations and orders): use request_client there."""
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


def actor_label(request) -> str:
    """Who did it, for ledger rows: the API client name or the staff username."""
    user = request.user
    if isinstance(user, ApiClient):
        return f"client:{user.name}"
    return f"user:{user.get_username()}" if user and user.is_authenticated else "anonymous"

