"""The driver bot: turns one Telegram update (command or button press) into replies through the Bot API."""
import logging
from functools import partial
from typing import Any

from django.conf import settings

from core.errors import UnknownCode
from inventory.models import Product, Stock
from inventory.selectors import product_resolve
from notifications import selectors, services, texts
from notifications.models import Driver
from notifications.telegram import TelegramClient, TelegramError, client_default, escape, text_clip
from notifications.texts import t

logger = logging.getLogger(__name__)

COMMANDS = {
    "start": "start", "estoque": "stock", "stock": "stock", "baixo": "low", "low": "low",
    "ruptura": "ruptura", "stockout": "ruptura", "silenciar": "mute", "mute": "mute",
    "ajuda": "help", "help": "help",
}
MUTE_MAX_HOURS = 24 * 7


def bot_update_handle(*, update: dict[str, Any], client: TelegramClient | None = None) -> None:
    """Answer one update. Telegram errors are logged, never raised: a bad chat must not block the queue."""
    client = client or client_default()
    if not client.configured:
        services._log_no_token()
        return
    try:
        if "callback_query" in update:
            _callback_handle(client, update["callback_query"])
        elif "message" in update:
            _message_handle(client, update["message"])
    except TelegramError:
        logger.exception("bot reply failed", extra={"update_id": update.get("update_id")})


def _reply(client: TelegramClient, chat_id: int, text: str, *, is_group: bool = False) -> None:
    # The alerts' rules: the chat's and the bot's rate limits, and retries of what can be retried
    # (5xx, timeouts, a 429's retry_after) within TELEGRAM_RETRY_BUDGET: the driver is waiting.
    client.chat_call("sendMessage", {"chat_id": chat_id, "text": text_clip(text), "parse_mode": "HTML"},
                     is_group=is_group)


def _is_group(chat: dict) -> bool:
    """Groups have their own Telegram rate limit (20 messages a minute)."""
    return chat.get("type") in ("group", "supergroup")


def _language(driver: Driver | None, message: dict) -> str:
    if driver is not None:
        return driver.language
    code = (message.get("from") or {}).get("language_code") or ""
    return "en" if code.startswith("en") else "pt-br"


def _message_handle(client: TelegramClient, message: dict) -> None:
    text = (message.get("text") or "").strip()
    chat = message.get("chat") or {}
    chat_id = chat.get("id")
    if not text.startswith("/") or chat_id is None:
        return
    head, _, rest = text.partition(" ")
    name = head[1:].split("@", 1)[0].lower()
    command = COMMANDS.get(name)
    args = rest.strip()
    driver = selectors.driver_by_chat(chat_id=chat_id)
    language = _language(driver, message)
    is_group = _is_group(chat)
    reply = partial(_reply, client, chat_id, is_group=is_group)

    if command == "start":
        linked = services.driver_link_redeem(token=args, chat_id=chat_id, is_group=is_group)
        if linked is None:
            reply(t(language, "not_linked" if not args else "link_invalid"))
        else:
            reply(t(linked.language, "linked", name=escape(linked.name)))
        return
    if command == "help":
        reply(t(language, "help"))
        return
    if driver is None:
        reply(t(language, "not_linked"))
        return
    if command == "stock":
        reply(stock_answer(language=language, term=args))
    elif command == "low":
        reply(low_answer(driver=driver))
    elif command == "ruptura":
        reply(ruptura_answer(driver=driver))
    elif command == "mute":
        reply(mute_answer(driver=driver, args=args))
    else:
        reply(t(language, "unknown"))


def _stock_line(language: str, stock: Stock) -> str:
    product = stock.product
    return t(language, "stock_line", name=escape(product.name), code=escape(product.code),
             on_hand=stock.on_hand, reserved=stock.reserved, available=stock.on_hand - stock.reserved)


def stock_answer(*, language: str, term: str) -> str:
    """``/estoque``: code, unified code or (fuzzy) name."""
    if not term:
        return t(language, "usage_stock")
    product, suggestions = selectors.product_find(term=term)
    if product is not None:
        return _stock_line(language, Stock.objects.select_related("product").get(product=product))
    if not suggestions:
        return t(language, "not_found", term=escape(term))
    lines = [t(language, "not_found", term=escape(term)), t(language, "did_you_mean")]
    lines += [f"• {escape(p.name)} ({escape(p.code)})" for p in suggestions]
    return "\n".join(lines)


def low_answer(*, driver: Driver) -> str:
    stocks = selectors.driver_low_stocks(driver=driver)
    if not stocks:
        return t(driver.language, "low_none")
    lines = [t(driver.language, "low_title", n=len(stocks))]
    lines += [f"• {escape(s.product.name)} ({escape(s.product.code)}): {s.on_hand - s.reserved}" for s in stocks]
    return "\n".join(lines)


def ruptura_answer(*, driver: Driver) -> str:
    """``/ruptura``: stockouts projected within the window, from the projections read model."""
    days = settings.ALERT_PROJECTION_DAYS
    try:
        from projections.selectors import projection_ruptures
    except ImportError:
        return t(driver.language, "ruptura_unavailable")
    summaries = projection_ruptures(days=days)
    query = selectors.driver_product_filter(driver)
    if query is not None:
        summaries = summaries.filter(product__in=Product.objects.filter(query))
    rows = list(summaries[:40])
    if not rows:
        return t(driver.language, "ruptura_none", days=days)
    lines = [t(driver.language, "ruptura_title", days=days)]
    lines += [f"• {escape(s.product.name)} ({escape(s.product.code)}): {s.stockout_date:%d/%m}" for s in rows]
    return "\n".join(lines)


def mute_answer(*, driver: Driver, args: str) -> str:
    parts = args.split()
    if len(parts) != 2:
        return t(driver.language, "usage_mute")
    code, hours_text = parts
    try:
        hours = float(hours_text.replace(",", "."))
    except ValueError:
        return t(driver.language, "usage_mute")
    if not 0 < hours <= MUTE_MAX_HOURS:
        return t(driver.language, "usage_mute")
    try:
        product = product_resolve(code=code)
    except UnknownCode:
        return t(driver.language, "not_found", term=escape(code))
    services.driver_mute(driver=driver, product=product, hours=hours)
    return t(driver.language, "muted", name=escape(product.name), hours=f"{hours:g}")


def _callback_handle(client: TelegramClient, query: dict) -> None:
    """Buttons under alerts: ``s:<product id>`` shows stock, ``m:<product id>:<hours>`` mutes. Always answered."""
    data = str(query.get("data") or "")
    chat = (query.get("message") or {}).get("chat") or {}
    chat_id = chat.get("id")
    driver = selectors.driver_by_chat(chat_id=chat_id) if chat_id is not None else None
    language = driver.language if driver else "pt-br"
    notice = ""
    try:
        parts = data.split(":")
        product = Product.objects.filter(pk=int(parts[1])).first() if len(parts) >= 2 else None
        if driver is not None and product is not None and parts[0] == "s":
            stock = Stock.objects.select_related("product").get(product=product)
            _reply(client, chat_id, _stock_line(language, stock), is_group=_is_group(chat))
        elif driver is not None and product is not None and parts[0] == "m":
            hours = float(parts[2]) if len(parts) > 2 else 1.0
            services.driver_mute(driver=driver, product=product, hours=min(max(hours, 0.1), MUTE_MAX_HOURS))
            notice = t(language, "muted", name=product.name, hours=f"{hours:g}").replace("<b>", "").replace("</b>", "")
    except (ValueError, Stock.DoesNotExist):
        notice = ""
    finally:
        client.call("answerCallbackQuery", {"callback_query_id": query.get("id"), "text": notice[:200]})
