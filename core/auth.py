"""API authentication (hashed bearer tokens) and the scope permission every API view declares."""
import threading
import time

from django.conf import settings
from rest_framework import authentication, exceptions, permissions

from core.models import ApiClient, token_hash

# token hash -> (client, monotonic expiry). A per-process cache: the token lookup was one query on
# every API request. Deactivating a client takes effect within API_CLIENT_CACHE_SECONDS.
_client_cache: dict[str, tuple[ApiClient, float]] = {}
_client_cache_lock = threading.Lock()


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
            if len(_client_cache) > 10_000:
                _client_cache.clear()
            _client_cache[hashed] = (client, now + ttl)
    return client


def api_client_cached(raw_token: str) -> ApiClient | None:
    """The client from the per-process cache only (no query); None when not cached or expired there."""
    cached = _client_cache.get(token_hash(raw_token))
    if cached is not None and cached[1] > time.monotonic():
        return cached[0]
    return None


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if len(parts) != 2 or parts[0].lower() != self.keyword.lower():
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <token>'.")
        client = api_client_for_token(parts[1])
        if client is None:
            raise exceptions.AuthenticationFailed("Invalid or inactive token.")
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

    message = "Your credentials lack the scope this operation needs."

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        scope = getattr(view, "required_scopes", {}).get(request.method) or getattr(view, "required_scope", None)
        if scope is None:
            return True
        return request_has_scope(request, scope)


def actor_label(request) -> str:
    """Who did it, for ledger rows: the API client name or the staff username."""
    user = request.user
    if isinstance(user, ApiClient):
        return f"client:{user.name}"
    return f"user:{user.get_username()}" if user and user.is_authenticated else "anonymous"

