"""Telegram Bot API client (requests): typed errors, retries within a time budget and shared rate limits in Redis.

The bot token is part of every request URL. It is redacted here, where the URL is built: errors carry no
URL with it, exceptions are raised without the requests error chained, and urllib3's log lines are filtered.
"""
import html
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import redis
import requests
from django.conf import settings

from core.cache import redis_direct

logger = logging.getLogger(__name__)

TEXT_LIMIT = 4096
CALLBACK_DATA_LIMIT = 64
REDACTED = "<token>"

# Every token a client was made with, so log lines of other libraries can be cleaned of it.
_tokens: set[str] = set()


def redact(text: str) -> str:
    """``text`` with every bot token this process knows replaced by ``<token>``."""
    for token in _tokens:
        text = text.replace(token, REDACTED)
    return text


class _TokenRedactor(logging.Filter):
    """urllib3 logs each request's URL (``POST /bot<token>/sendMessage``): the token never reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


for _name in ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.connection"):
    logging.getLogger(_name).addFilter(_TokenRedactor())


class TelegramError(Exception):
    """Telegram (or the way to it) said no. ``retryable`` errors may succeed on a later attempt."""

    retryable = False

    def __init__(self, description: str, *, status: int | None = None, parameters: dict | None = None):
        super().__init__(description)
        self.description = description
        self.status = status
        self.parameters = parameters or {}


class TelegramUnavailable(TelegramError):
    """5xx, timeout or connection error."""

    retryable = True


class TelegramRateLimited(TelegramError):
    """429: wait ``retry_after`` seconds before calling that chat again."""

    @property
    def retry_after(self) -> float:
        return float(self.parameters.get("retry_after", 1))


class TelegramUnreachable(TelegramError):
    """403 (the driver blocked the bot) or "chat not found": retrying cannot help."""


class TelegramParseError(TelegramError):
    """400 "can't parse entities": the HTML was refused."""


class TelegramMigrated(TelegramError):
    """The group became a supergroup with a new chat id."""

    @property
    def new_chat_id(self) -> int:
        return int(self.parameters["migrate_to_chat_id"])


class TelegramNotModified(TelegramError):
    """Editing a message to the text it already has; for us that is success."""


class TelegramBadRequest(TelegramError):
    """Any other 4xx."""


def escape(value: Any) -> str:
    """Escape a dynamic field for HTML parse mode (``<``, ``>``, ``&`` and quotes)."""
    return html.escape(str(value), quote=True)


_TAG = re.compile(r"<[^>]+>")


def html_to_plain(text: str) -> str:
    """The same text without markup, for the one plain-text retry after a parse error."""
    return html.unescape(_TAG.sub("", text))


def text_clip(text: str, limit: int = TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _classify(status: int, body: dict) -> TelegramError:
    description = redact(str(body.get("description") or f"HTTP {status}"))
    parameters = body.get("parameters") or {}
    lowered = description.lower()
    if "migrate_to_chat_id" in parameters:
        return TelegramMigrated(description, status=status, parameters=parameters)
    if status == 429:
        return TelegramRateLimited(description, status=status, parameters=parameters)
    if status >= 500:
        return TelegramUnavailable(description, status=status, parameters=parameters)
    if status == 403 or "chat not found" in lowered or "user is deactivated" in lowered:
        return TelegramUnreachable(description, status=status, parameters=parameters)
    if "message is not modified" in lowered:
        return TelegramNotModified(description, status=status, parameters=parameters)
    if "can't parse entities" in lowered or "can not parse entities" in lowered:
        return TelegramParseError(description, status=status, parameters=parameters)
    return TelegramBadRequest(description, status=status, parameters=parameters)


# GCRA over several keys at once, on Redis' clock so every worker shares it. KEYS: block key, then
# (rate key) per limit; ARGV: per limit (interval_ms, burst). Returns ms to wait, 0 when the call is allowed.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local blocked = redis.call('PTTL', KEYS[1])
if blocked > 0 then return blocked end
local wait = 0
local tats = {}
for i = 2, #KEYS do
  local interval = tonumber(ARGV[(i - 2) * 2 + 1])
  local burst = tonumber(ARGV[(i - 2) * 2 + 2])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  local allow_at = tat - interval * (burst - 1)
  if allow_at > now and allow_at - now > wait then wait = allow_at - now end
  tats[i] = tat
end
if wait > 0 then return wait end
for i = 2, #KEYS do
  local interval = tonumber(ARGV[(i - 2) * 2 + 1])
  local tat = tats[i] + interval
  redis.call('SET', KEYS[i], tat, 'PX', math.max(1000, tat - now + 1000))
end
return 0
"""

def _redis() -> redis.Redis:
    return redis_direct(timeout=2)


def _key(*parts: Any) -> str:
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "stockpulse")
    return ":".join([prefix, "tg", *map(str, parts)])


@dataclass
class RateLimiter:
    """At most 1 message/s per chat, 20/min per group, 25/s overall, across all workers (state in Redis)."""

    def acquire_wait(self, *, chat_id: int, is_group: bool) -> float:
        """Seconds to wait before this chat may be called; 0 means the slot was taken now."""
        keys = [_key("block", chat_id), _key("rate", "chat", chat_id), _key("rate", "global")]
        argv = [int(settings.TELEGRAM_RATE_CHAT_SECONDS * 1000), 1,
                max(1, int(1000 / settings.TELEGRAM_RATE_GLOBAL_PER_SECOND)), settings.TELEGRAM_RATE_GLOBAL_PER_SECOND]
        if is_group:
            keys.append(_key("rate", "group", chat_id))
            argv += [int(60_000 / settings.TELEGRAM_RATE_GROUP_PER_MINUTE), 1]
        return int(_redis().eval(_ACQUIRE, len(keys), *keys, *argv)) / 1000

    def defer_once(self, *, seconds: float, driver_id: int | None = None, chat_id: int | None = None) -> bool:
        """True for the first caller asking to come back to this driver's alerts (or this chat's bot
        replies) later; the others can rely on that task."""
        key = _key("deferred", driver_id) if chat_id is None else _key("deferred", "chat", chat_id)
        return bool(_redis().set(key, 1, nx=True, px=max(1, int(seconds * 1000))))

    def block(self, *, chat_id: int, seconds: float) -> None:
        """After a 429 nobody calls this chat for exactly ``retry_after`` seconds."""
        _redis().set(_key("block", chat_id), 1, px=max(1, int(seconds * 1000)))


class TelegramClient:
    """One bot. ``call`` makes exactly one request; ``chat_call`` adds rate limits and the retry policy."""

    def __init__(self, *, token: str | None = None, base: str | None = None, timeout: float | None = None):
        self.token = settings.TELEGRAM_BOT_TOKEN if token is None else token
        if self.token:
            _tokens.add(self.token)
        self.base = (base or settings.TELEGRAM_API_BASE).rstrip("/")
        self.timeout = timeout or settings.TELEGRAM_TIMEOUT
        self.session = requests.Session()
        self.limiter = RateLimiter()

    @property
    def configured(self) -> bool:
        return bool(self.token)

    def _post(self, method: str, payload: dict[str, Any], timeout: float | tuple[float, float]) -> Any:
        # The one place the token goes into a URL; nothing leaves here with it.
        try:
            response = self.session.post(f"{self.base}/bot{self.token}/{method}", json=payload, timeout=timeout)
        except requests.RequestException as exc:
            # `from None`: the requests error names the URL, and a logged traceback would show its chain.
            raise TelegramUnavailable(redact(f"{type(exc).__name__}: {exc}")) from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code == 200 and body.get("ok"):
            return body.get("result")
        raise _classify(response.status_code, body if isinstance(body, dict) else {})

    def call(self, method: str, payload: dict[str, Any] | None = None, *, timeout: float | None = None,
             on_late_answer: Callable[[Any], None] | None = None) -> Any:
        """One request; returns ``result`` or raises a TelegramError subclass.

        With ``on_late_answer`` the request goes on after ``timeout`` (up to TELEGRAM_LATE_ANSWER_SECONDS):
        the caller gets TelegramUnavailable at the timeout as usual, and if Telegram then answers that it
        accepted the request after all, ``on_late_answer(result)`` is called on the request's own thread.
        """
        timeout = timeout or self.timeout
        if on_late_answer is None:
            return self._post(method, payload or {}, timeout)
        request = _WatchedRequest(partial(self._post, method, payload or {},
                                          (timeout, settings.TELEGRAM_LATE_ANSWER_SECONDS)), on_late_answer)
        return request.result(timeout=timeout)

    def chat_call(self, method: str, payload: dict[str, Any], *, is_group: bool = False,
                  deadline: float | None = None, attempts_allowed: int | None = None,
                  slot_taken: bool = False, on_late_answer: Callable[[Any], None] | None = None) -> Any:
        """Call a method aimed at ``payload["chat_id"]`` under the rate limits, retrying what can be retried.

        5xx/timeouts: up to TELEGRAM_MAX_RETRIES retries with short backoff while the budget lasts.
        429: the chat is blocked for exactly ``retry_after`` and the call waits for it if the budget allows,
        otherwise the TelegramRateLimited goes up so the caller reschedules. A parse error is retried once as
        plain text. Raises the last error; ``attempts`` on the error says how many requests were made.
        """
        deadline = deadline or (time.monotonic() + settings.TELEGRAM_RETRY_BUDGET)
        attempts = 0
        retries_left = settings.TELEGRAM_MAX_RETRIES if attempts_allowed is None else attempts_allowed - 1
        plain_tried = False
        backoff = 0.05
        while True:
            wait = 0.0 if slot_taken else self.limiter.acquire_wait(chat_id=payload["chat_id"], is_group=is_group)
            slot_taken = False
            if wait > 0:
                if time.monotonic() + wait > deadline:
                    raise _with_attempts(TelegramRateLimited("local rate limit", parameters={"retry_after": wait}),
                                         attempts)
                time.sleep(wait)
                continue
            attempts += 1
            remaining = max(0.2, deadline - time.monotonic())
            try:
                return self.call(method, payload, timeout=min(self.timeout, remaining), on_late_answer=on_late_answer)
            except TelegramRateLimited as exc:
                self.limiter.block(chat_id=payload["chat_id"], seconds=exc.retry_after)
                if time.monotonic() + exc.retry_after > deadline:
                    raise _with_attempts(exc, attempts)
                continue
            except TelegramParseError as exc:
                if plain_tried or payload.get("parse_mode") is None:
                    raise _with_attempts(exc, attempts)
                plain_tried = True
                payload = {k: v for k, v in payload.items() if k != "parse_mode"}
                payload["text"] = html_to_plain(payload["text"])
                continue
            except TelegramError as exc:
                if not exc.retryable or retries_left <= 0 or time.monotonic() + backoff > deadline:
                    raise _with_attempts(exc, attempts)
                retries_left -= 1
                time.sleep(backoff)
                backoff *= 2


class _WatchedRequest:
    """One request on a thread of its own. If the caller stops waiting before it ends and Telegram then
    accepts it, the callback gets the result, on that thread (never on the caller's)."""

    def __init__(self, send: Callable[[], Any], on_late_answer: Callable[[Any], None]):
        self.send = send
        self.on_late_answer = on_late_answer
        self.lock = threading.Lock()
        self.finished = threading.Event()
        self.abandoned = False
        self.answer: Any = None
        self.error: BaseException | None = None
        threading.Thread(target=self._run, name="telegram-request", daemon=True).start()

    def _run(self) -> None:
        try:
            self.answer = self.send()
        except Exception as exc:  # noqa: BLE001 - handed to the caller, or dropped when it has gone
            self.error = exc
        with self.lock:
            self.finished.set()
            late = self.abandoned
        if late and self.error is None:
            try:
                self.on_late_answer(self.answer)
            except Exception:
                logger.exception("late Telegram answer could not be recorded")

    def result(self, *, timeout: float) -> Any:
        self.finished.wait(timeout)
        with self.lock:
            if not self.finished.is_set():
                self.abandoned = True
                raise TelegramUnavailable(f"ReadTimeout: no answer within {timeout:g}s")
        if self.error is not None:
            raise self.error
        return self.answer


def _with_attempts(exc: TelegramError, attempts: int) -> TelegramError:
    exc.attempts = attempts
    return exc


_clients = threading.local()


def client_default() -> TelegramClient:
    """This thread's client for the configured bot, so deliveries reuse one HTTP connection."""
    key = (settings.TELEGRAM_BOT_TOKEN, settings.TELEGRAM_API_BASE, settings.TELEGRAM_TIMEOUT)
    cached = getattr(_clients, "by_key", None)
    if cached is None or cached[0] != key:
        cached = (key, TelegramClient())
        _clients.by_key = cached
    return cached[1]

