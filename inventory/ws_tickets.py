"""Short-lived, single-use WebSocket tickets kept in Redis, for clients that cannot send a session cookie."""
import hashlib
import json
import secrets
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from redis.exceptions import RedisError

from core import aio
from core.cache import redis_circuit, redis_direct
from core.errors import Unavailable

TICKET_PREFIX = "wst_"


def ws_ticket_key(ticket: str) -> str:
    # Only a digest is stored, so reading Redis never yields a usable ticket.
    digest = hashlib.sha256(ticket.encode()).hexdigest()
    return f"{settings.CACHES['default'].get('KEY_PREFIX', 'stockpulse')}:ws-ticket:{digest}"


def ws_ticket_issue(*, principal: dict[str, Any]) -> tuple[str, int]:
    """Store a new ticket for this principal ({"kind", "id", "name"}); return it and its lifetime in seconds.

    A ticket truly needs Redis (the WebSocket server redeems it there): while Redis is down this is
    503 ``unavailable`` with Retry-After, at once when Redis is already known down.
    """
    if redis_circuit.is_down():
        raise _live_updates_unavailable()
    ttl = settings.WS_TICKET_TTL_SECONDS
    ticket = TICKET_PREFIX + secrets.token_urlsafe(24)
    try:
        redis_direct(timeout=settings.REDIS_SOCKET_TIMEOUT).set(ws_ticket_key(ticket), json.dumps(principal), ex=ttl)
    except RedisError as exc:
        redis_circuit.mark_down(exc)
        raise _live_updates_unavailable() from exc
    redis_circuit.mark_up()
    return ticket, ttl


def _live_updates_unavailable() -> Unavailable:
    return Unavailable(_("Live updates are unavailable right now; try again shortly."),
                       retry_after=max(1, round(redis_circuit.probe_seconds)))


async def ws_ticket_redeem(*, ticket: str) -> dict[str, Any] | None:
    """The principal a ticket was issued to, or None; a ticket works once (GETDEL is atomic)."""
    if not ticket.startswith(TICKET_PREFIX) or len(ticket) > 100:
        return None
    # The loop's shared client: a socket's connect costs no new connection (nor, behind Sentinel, a master
    # lookup); a server that stays down fails the redeem after its one-second timeout.
    raw = await aio.redis_client().getdel(ws_ticket_key(ticket))
    return json.loads(raw) if raw else None
