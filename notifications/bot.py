"""The driver bot: turns one Telegram update (command or button press) into replies through the Bot API."""
import logging
import re
from functools import partial
from typing import Any

from django.conf import settings

from core.errors import UnknownCode
from inventory.models import Product, Stock, search_fold
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
RUPTURA_LINES_MAX = 40
# Words of a free-text question that are not the product ("tem arroz?", "quanto de café temos?"),
# compared without accents.
FILLER_WORDS = frozenset("""
    tem tens temos ha existe existem sobrou ainda quanto quantos quanta quantas qual quais que
    de do da dos das o a os as um uma uns umas no na nos nas em e eh estoque disponivel voce vc
    oi ola bom boa dia tarde noite por favor pf pfv me diz diga ver saber preciso quero sabe
    is there any do you have how many much stock of in the a an please
""".split())


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


def free_text_term(text: str) -> str:
    """What a driver asks about in free text: "tem arroz?" → "arroz" (filler words and punctuation dropped)."""
    words = re.findall(r"[\w.\-]+", text)
    kept = [w for w in words if search_fold(w.strip(".-")) not in FILLER_WORDS]
    return " ".join(kept).strip(" .-")


def _message_handle(client: TelegramClient, message: dict) -> None:
    text = (message.get("text") or "").strip()
    chat = message.get("chat") or {}
    chat_id = chat.get("id")
    if not text or chat_id is None:
        return
    if text.startswith("/"):
        head, _, rest = text.partition(" ")
        command = COMMANDS.get(head[1:].split("@", 1)[0].lower())
        args = rest.strip()
    elif _is_group(chat):
        # In a group, chat among people is not addressed to the bot: only commands are answered there.
        return
    else:
        # Free text in a private chat is a stock question: "tem arroz?" answers as /estoque arroz.
        command, args = "free_text", free_text_term(text)
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
    elif command == "free_text":
        reply(stock_answer(language=language, term=args) if args else t(language, "free_text_unclear"))
    elif command == "low":
        reply(low_answer(driver=driver))
    elif command == "ruptura":
        reply(ruptura_answer(driver=driver))
    elif command == "mute":
        reply(mute_answer(driver=driver, args=args))
    else:
        reply(t(language, "unknown"))


def _stock_line(language: str, stock: Stock) -> str:
    """One product's stock; with nothing available, what to offer instead (see substitutes_for)."""
    product = stock.product
    available = stock.on_hand - stock.reserved
    text = t(language, "stock_line", name=escape(product.name), code=escape(product.code),
             on_hand=stock.on_hand, reserved=stock.reserved, available=available)
    substitutes = selectors.substitutes_for(product=product) if available <= 0 else []
    return text + texts.substitutes_line(language, substitutes) if substitutes else text


def stock_answer(*, language: str, term: str) -> str:
    """``/estoque`` (and free text): the product a code, unified code or name means, else the closest
    matches with what each has available, else "not found": never both."""
    if not term:
        return t(language, "usage_stock")
    product, matches = selectors.product_find(term=term)
    if product is not None:
        return _stock_line(language, Stock.objects.select_related("product").get(product=product))
    if not matches:
        return t(language, "not_found", term=escape(term))
    lines = [t(language, "matches", term=escape(term))]
    lines += [f"• {escape(p.name)} ({escape(p.code)}): {p.stock.on_hand - p.stock.reserved}" for p in matches]
    return "\n".join(lines)


def low_answer(*, driver: Driver) -> str:
    stocks = selectors.driver_low_stocks(driver=driver)
    if not stocks:
        return t(driver.language, "low_none")
    lines = [t(driver.language, "low_title", n=len(stocks))]
    lines += [f"• {escape(s.product.name)} ({escape(s.product.code)}): {s.on_hand - s.reserved}" for s in stocks]
    return "\n".join(lines)


def ruptura_answer(*, driver: Driver) -> str:
    """``/ruptura``: what is out now first, then stockouts projected within the window: the API's ruptures
    list, kept to the products the driver follows."""
    days, language = settings.ALERT_PROJECTION_DAYS, driver.language
    try:
        from projections.selectors import projection_out_now, projection_ruptures
    except ImportError:
        return t(language, "ruptura_unavailable")
    out_now, projected = projection_out_now(), projection_ruptures(days=days)
    query = selectors.driver_product_filter(driver)
    if query is not None:
        followed = Product.objects.filter(query)
        out_now, projected = out_now.filter(product__in=followed), projected.filter(product__in=followed)
    out_rows = list(out_now[:RUPTURA_LINES_MAX + 1])
    room = max(RUPTURA_LINES_MAX - len(out_rows), 0)
    projected_rows = list(projected[:room + 1])
    if not out_rows and not projected_rows:
        return t(language, "ruptura_none", days=days)
    lines = []
    if out_rows:
        count = out_now.count() if len(out_rows) > RUPTURA_LINES_MAX else len(out_rows)
        lines.append(t(language, "ruptura_out_title", n=count))
        lines += [f"• {escape(s.product.name)} ({escape(s.product.code)}): {s.on_hand - s.reserved}"
                  for s in out_rows[:RUPTURA_LINES_MAX]]
    if projected_rows[:room]:
        lines.append(t(language, "ruptura_title", days=days))
        lines += [f"• {escape(s.product.name)} ({escape(s.product.code)}): {s.stockout_date:%d/%m}"
                  for s in projected_rows[:room]]
    if len(out_rows) > RUPTURA_LINES_MAX or len(projected_rows) > room:
        lines.append(t(language, "ruptura_more"))
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
