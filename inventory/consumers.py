"""The live stock WebSocket: authenticates, keeps the socket's subscription as groups of the fan-out hub, relays events.

It never writes to the database. Protocol (docs/realtime.md): the server says ``hello``; the client
may send ``{"action": "subscribe", ...}`` or ``{"action": "ping"}`` at any time; events arrive as
JSON text frames exactly as the publisher serialised them; ``interrupted`` and ``resync`` say the
process's stream lost events and is back (reload the snapshot). Batches reach the socket through the
process's fan-out hub (core/fanout.py), which calls ``relay_batch`` directly: a socket has no
channel-layer channel of its own. Under Daphne the batch's frames, encoded once by the hub, go
straight to the connection (``DaphneFrameWriter``); elsewhere through the ASGI send. A socket follows
some locations (``?locations=``; the default one when it names none) and joins only their groups, so
other locations' traffic never reaches it.
"""
import asyncio
import json
import logging
from collections import OrderedDict
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone
from django.utils.translation import gettext as _
from redis.exceptions import RedisError

from core.fanout import (
    FRAME_WRITER_SCOPE_KEY, STREAM_INTERRUPTED, DaphneFrameWriter, EncodedBatch, fanout_hub, websocket_text_frame,
)
from core.errors import LocationForbidden, UnknownLocation
from core.groups import category_key, groups_for_subscription
from core.jsoninput import json_input_loads
from inventory.selectors import locations_for_stream, products_resolve_many, ws_principal_client
from inventory.ws_tickets import ws_ticket_redeem

logger = logging.getLogger(__name__)

SUBPROTOCOL = "stockpulse.v1"
TICKET_SUBPROTOCOL_PREFIX = "ticket."
CLOSE_UNAUTHENTICATED = 4401
CLOSE_TRY_AGAIN = 4503
# A location the socket asked for in its URL is no active location / is not the principal's: the
# error frame before the close names them (an HTTP-like code, as 4401 is).
CLOSE_UNKNOWN_LOCATION = 4400
CLOSE_LOCATION_FORBIDDEN = 4403
MAX_LOCATIONS = 100
MAX_CATEGORIES = 50
MAX_CATEGORY_LENGTH = 100
# Enough to cover one batch delivered through several of the socket's groups.
SEEN_IDS_KEPT = 256


class InvalidSubscription(ValueError):
    pass


def _split(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _locations_asked(value) -> list[str] | None:
    """The codes ``locations`` names (a list, or "all" as such or alone in a list); None when absent."""
    if value is None:
        return None
    codes = _as_list([value] if isinstance(value, str) else value, "locations")
    if not codes:
        raise InvalidSubscription(_('locations must name at least one location, or be "all".'))
    if len(codes) > MAX_LOCATIONS:
        raise InvalidSubscription(_("At most %(count)s locations per socket.") % {"count": MAX_LOCATIONS})
    return codes


def _as_list(value, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidSubscription(f"{name} must be a list of strings.")
    return [v.strip() for v in value if v.strip()]


class StockConsumer(AsyncWebsocketConsumer):
    # No channel-layer channel per socket (no Redis subscription, no reader task each): events come
    # from the fan-out hub. An alias that names no layer makes channels skip it.
    channel_layer_alias = "stock-socket-has-no-channel"

    async def connect(self):
        self.subscribed_groups: set[str] = set()
        self.hub = fanout_hub()
        self.subscription: dict = {}
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.heartbeat_task: asyncio.Task | None = None
        self.locations: list[str] = []
        self.frame_writer: DaphneFrameWriter | None = None
        offered = self.scope.get("subprotocols") or []
        try:
            self.principal = await self._authenticate(offered)
        except RedisError:
            logger.error("websocket ticket check failed: Redis unreachable")
            await self.accept(SUBPROTOCOL if SUBPROTOCOL in offered else None)
            await self.close(code=CLOSE_TRY_AGAIN)
            return
        # Accept first so the close code reaches the client: a refused handshake is a bare HTTP 403.
        await self.accept(SUBPROTOCOL if SUBPROTOCOL in offered else None)
        if self.principal is None:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        writer = self.scope.get(FRAME_WRITER_SCOPE_KEY)
        if writer is not None and writer.usable():
            self.frame_writer = writer
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        asked = query.get("locations")
        try:
            self.client = await self._client()
            if self.client is None:  # the ticket's client or user is gone
                await self.close(code=CLOSE_UNAUTHENTICATED)
                return
            self.locations = await self._locations(_locations_asked(None if asked is None else _split(asked)))
        except InvalidSubscription as exc:
            await self._refuse("invalid_subscription", str(exc), {}, CLOSE_UNKNOWN_LOCATION)
            return
        except (UnknownLocation, LocationForbidden) as exc:
            close = CLOSE_LOCATION_FORBIDDEN if isinstance(exc, LocationForbidden) else CLOSE_UNKNOWN_LOCATION
            await self._refuse(exc.code, str(exc.message), exc.details, close)
            return
        except DatabaseError:
            logger.error("websocket locations check failed: PostgreSQL unreachable")
            await self.close(code=CLOSE_TRY_AGAIN)
            return
        try:
            try:
                await self._subscribe(
                    everything=not (query.get("codes") or query.get("categories")),
                    codes=_split(query.get("codes", [])),
                    categories=_split(query.get("categories", [])),
                )
            except InvalidSubscription as exc:
                await self._send_error("invalid_subscription", str(exc))
                await self._subscribe(everything=True, codes=[], categories=[])
        except (RedisError, OSError):
            # The groups could not be subscribed: a "hello" now would promise events that cannot come.
            logger.error("websocket subscription failed: Redis unreachable")
            await self.close(code=CLOSE_TRY_AGAIN)
            return
        await self._send({
            "type": "hello",
            "server_time": timezone.now().isoformat(),
            "heartbeat_seconds": settings.WS_HEARTBEAT_SECONDS,
            "subscription": self.subscription,
        })
        if self.hub is not None and not self.hub.live:
            # Subscribed, but this process's stream is down: "resync" follows once it is back.
            await self.relay_stream_state(STREAM_INTERRUPTED)
        self.heartbeat_task = asyncio.create_task(self._heartbeat())

    async def _authenticate(self, offered: list[str]) -> dict | None:
        user = self.scope.get("user")
        if user is not None and user.is_authenticated and user.is_staff:
            return {"kind": "user", "id": user.pk, "name": user.get_username()}
        ticket = next((p[len(TICKET_SUBPROTOCOL_PREFIX):] for p in offered if p.startswith(TICKET_SUBPROTOCOL_PREFIX)), None)
        if ticket is None:
            query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
            ticket = (query.get("ticket") or [None])[0]
        if not ticket:
            return None
        return await ws_ticket_redeem(ticket=ticket)

    async def _client(self):
        """The API client or staff user whose locations this socket may follow."""
        if self.principal["kind"] == "user" and self.scope.get("user") is not None \
                and self.scope["user"].pk == self.principal["id"]:
            return self.scope["user"]
        return await database_sync_to_async(ws_principal_client)(self.principal)

    async def _locations(self, codes: list[str] | None) -> list[str]:
        """The codes of the locations asked (``["all"]``: every one the principal may use; None: the default one)."""
        places = await database_sync_to_async(locations_for_stream)(client=self.client, codes=codes)
        return [place.code for place in places]

    async def _refuse(self, code: str, message: str, details: dict, close_code: int) -> None:
        """Say why in an error frame, then close: the socket was asked for locations it cannot follow."""
        await self._send_error(code, message, details)
        await self.close(code=close_code, reason=code)

    async def disconnect(self, code):
        if getattr(self, "heartbeat_task", None) is not None:
            self.heartbeat_task.cancel()
        groups = getattr(self, "subscribed_groups", set())
        if groups and getattr(self, "hub", None) is not None:
            await self.hub.leave(self, groups)

    async def receive(self, text_data=None, bytes_data=None):
        try:
            content = json_input_loads(text_data if text_data is not None else bytes_data)
        except (TypeError, ValueError):
            await self._send_error("malformed", _("Send one JSON object per message."))
            return
        if not isinstance(content, dict):
            await self._send_error("malformed", _("Send one JSON object per message."))
            return
        action = content.get("action")
        if action == "ping":
            await self._send({"type": "pong", "server_time": timezone.now().isoformat()})
        elif action == "subscribe":
            try:
                asked = _locations_asked(content.get("locations"))
                if asked is not None:
                    # Read the principal again: its location limits may have changed since connect, and
                    # the user object of the socket's scope keeps the ones it read then.
                    self.client = await database_sync_to_async(ws_principal_client)(self.principal)
                    if self.client is None:
                        await self.close(code=CLOSE_UNAUTHENTICATED)
                        return
                locations = self.locations if asked is None else await self._locations(asked)
                await self._subscribe(
                    locations=locations,
                    everything=content.get("all") is True,
                    codes=_as_list(content.get("codes"), "codes"),
                    categories=_as_list(content.get("categories"), "categories"),
                )
            except InvalidSubscription as exc:
                await self._send_error("invalid_subscription", str(exc))
                return
            except (UnknownLocation, LocationForbidden) as exc:
                # The socket keeps the subscription it had.
                await self._send_error(exc.code, str(exc.message), exc.details)
                return
            except (RedisError, OSError, DatabaseError):
                logger.error("websocket subscription failed: Redis or PostgreSQL unreachable")
                await self.close(code=CLOSE_TRY_AGAIN)
                return
            await self._send({"type": "subscribed", **self.subscription})
        else:
            await self._send_error("unknown_action", _("action must be 'subscribe' or 'ping'."))

    async def _subscribe(self, *, everything: bool, codes: list[str], categories: list[str],
                         locations: list[str] | None = None) -> None:
        """Replace the socket's subscription (at its locations, unless others are given, already
        checked). Codes may be aliases; they are resolved to product codes."""
        locations = self.locations if locations is None else locations
        if not everything and not codes and not categories:
            raise InvalidSubscription("Subscribe to everything (\"all\": true), to categories or to codes.")
        if len(codes) > settings.WS_MAX_SUBSCRIBED_CODES:
            raise InvalidSubscription(f"At most {settings.WS_MAX_SUBSCRIBED_CODES} codes per socket.")
        if len(categories) > MAX_CATEGORIES or any(len(c) > MAX_CATEGORY_LENGTH for c in categories):
            raise InvalidSubscription(f"At most {MAX_CATEGORIES} categories of up to {MAX_CATEGORY_LENGTH} characters.")
        canonical: list[str] = []
        unknown: list[str] = []
        if codes and not everything:
            found, unknown = await database_sync_to_async(products_resolve_many)(codes=codes)
            canonical = sorted({product.code for product in found.values()})
        categories = sorted({category_key(c) for c in categories}) if not everything else []
        wanted = groups_for_subscription(codes=canonical, categories=categories, everything=everything,
                                         locations=locations)
        if self.hub is not None:
            joining = wanted - self.subscribed_groups
            # Counted as the socket's before joining, so a join that fails halfway is still left on disconnect.
            self.subscribed_groups = self.subscribed_groups | joining
            await self.hub.join(self, joining)
            await self.hub.leave(self, self.subscribed_groups - wanted)
        self.subscribed_groups = wanted
        self.locations = locations
        self.subscription = {
            "all": everything, "codes": canonical, "categories": categories, "unknown_codes": unknown,
            "locations": locations,
        }

    async def relay_batch(self, batch: EncodedBatch) -> None:
        """Write a publisher batch to the client. An event reaching this socket through two groups is sent once.

        Called by the fan-out hub for every local socket of a group. Neither path waits for the
        client: the frame writer and the ASGI send both leave unsent bytes in the connection's buffer.
        """
        if self.relay_batch_now(batch):
            return
        for _item_id, text in self._items_for(batch):
            await self.base_send({"type": "websocket.send", "text": text})

    async def relay_stream_state(self, state: str) -> None:
        """Tell the client its stream was ``interrupted`` (events may be lost) or is back (``resync``:
        reload the snapshot). Called by the fan-out hub."""
        await self._send({"type": state, "server_time": timezone.now().isoformat()})

    def relay_batch_now(self, batch: EncodedBatch) -> bool:
        """``relay_batch`` without a coroutine, when this socket has a frame writer: True once
        written; False when only the ASGI send can write it (then call ``relay_batch``)."""
        if self.frame_writer is None:
            return False
        items = self._items_for(batch)
        if items:
            self.frame_writer.write(batch.frames_of(items))
        return True

    def _items_for(self, batch: EncodedBatch) -> list[list[str]]:
        """The batch's items this socket is to get: all of them, or with several groups those not sent yet."""
        return self._unseen(batch.items) if len(self.subscribed_groups) > 1 else batch.items

    def _unseen(self, items: list[list[str]]) -> list[list[str]]:
        """The items whose event id this socket has not had yet; remembers them."""
        seen = self.seen
        fresh = []
        for item in items:
            if item[0] in seen:
                continue
            seen[item[0]] = None
            fresh.append(item)
        while len(seen) > SEEN_IDS_KEPT:
            seen.popitem(last=False)
        return fresh

    async def _heartbeat(self):
        while True:
            await asyncio.sleep(settings.WS_HEARTBEAT_SECONDS)
            await self._send({"type": "heartbeat", "server_time": timezone.now().isoformat()})

    async def _send(self, payload: dict) -> None:
        text = json.dumps(payload, separators=(",", ":"))
        if self.frame_writer is not None:
            # The same direct write as the batches (and in order with them): a heartbeat through
            # Daphne's send path costs about 100 µs, and a thousand sockets beat 67 times a second.
            self.frame_writer.write(websocket_text_frame(text))
            return
        await self.send(text_data=text)

    async def _send_error(self, code: str, message: str, details: dict | None = None) -> None:
        frame = {"type": "error", "code": code, "message": message}
        if details:
            frame["details"] = details
        await self._send(frame)
