"""The bot of drivers and buyers: turns Telegram updates (commands, button presses) into replies through the Bot API,
each chat's commands answered in the order sent, one reply per chat slot of Telegram's rate limit. Answers are
about the recipient's locations (the default one for a recipient listed at none)."""
import logging
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone

from core.errors import UnknownCode
from inventory.models import Location, Product, Stock, search_fold
from inventory.selectors import location_default, product_resolve, stock_at, stocks_of_product
from notifications import selectors, services, texts
from notifications.models import Driver
from notifications.telegram import (
    TelegramClient,
    TelegramError,
    TelegramRateLimited,
    client_default,
    escape,
    text_clip,
)
from notifications.texts import t
from projections.selectors import projection_out_now, projection_ruptures

logger = logging.getLogger(__name__)

COMMANDS = {
    "start": "start", "estoque": "stock", "stock": "stock", "baixo": "low", "low": "low",
    "ruptura": "ruptura", "stockout": "ruptura", "silenciar": "mute", "mute": "mute",
    "compras": "compras", "reorder": "compras", "ajuda": "help", "help": "help",
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


@dataclass
class BotAnswer:
    """What the bot says to one update: ``reply`` is a sendMessage payload (None: nothing to say), and
    ``callback`` the answerCallbackQuery payload of a button press. Working it out makes no network call."""

    reply: dict[str, Any] | None = None
    callback: dict[str, Any] | None = None


def bot_update_answer(*, update: dict[str, Any]) -> BotAnswer:
    """What to say to one update (its writes, a link or a mute, are made here)."""
    if isinstance(update.get("callback_query"), dict):
        return _callback_answer(update["callback_query"])
    if isinstance(update.get("message"), dict):
        return BotAnswer(reply=_message_answer(update["message"]))
    return BotAnswer()


def bot_update_handle(*, update: dict[str, Any], client: TelegramClient | None = None) -> None:
    """Answer one update at once (``telegram_poll`` answers its updates one after another this way).
    Telegram errors are logged, never raised: a bad chat must not block the others."""
    client = client or client_default()
    if not client.configured:
        services._log_no_token()
        return
    answer = bot_update_answer(update=update)
    try:
        if answer.reply is not None:
            _send(client, answer.reply, is_group=_is_group(services.update_chat(update)))
    except TelegramError:
        logger.exception("bot reply failed", extra={"update_id": update.get("update_id")})
    finally:
        _callback_send(client, answer)


def bot_chat_serve(*, update_id: int, client: TelegramClient | None = None) -> None:
    """Answer the chat this update came from: its updates in the order sent (``update_id``), one reply per
    slot of the chat's rate limit. When the slot is taken the task comes back when it is free (a worker
    never sleeps on a busy chat), so commands sent faster than Telegram lets us answer are queued, not
    dropped. Whichever worker holds the chat's next update goes on with the ones behind it."""
    client = client or client_default()
    if not client.configured:
        services._log_no_token()
        return
    chat_id = selectors.telegram_update_chat_id(update_id=update_id)
    if chat_id is None:
        # An update without a chat has nothing to keep in order with.
        update = services.telegram_update_claim(update_id=update_id)
        if update is not None:
            bot_update_handle(update=update, client=client)
        return
    while True:
        head = selectors.telegram_chat_next(chat_id=chat_id)
        if head is None:
            return
        if head.processed_at is None:
            try:
                answer = services.telegram_update_answer(update_id=head.update_id, answer=bot_update_answer)
            except TelegramError:
                raise
            except Exception:
                # An update the bot cannot answer must not hold up the chat's later commands.
                logger.exception("bot update could not be answered", extra={"update_id": head.update_id})
                services.telegram_update_drop(update_id=head.update_id)
                continue
            if answer is None:
                return  # another worker is processing it, and goes on from there
            _callback_send(client, answer)
            continue
        if not _queued_reply_send(client, head):
            return


def _queued_reply_send(client: TelegramClient, head: Any) -> bool:
    """Send the chat's first waiting reply in the chat's slot; False when it has to wait (the chat is queued
    again for when the slot is free) or another worker is sending it."""
    lease = services.telegram_reply_claim(update_id=head.update_id)
    if lease is None:
        return False
    chat_id, is_group = head.reply["chat_id"], _is_group(services.update_chat(head.payload))
    wait = client.limiter.acquire_wait(chat_id=chat_id, is_group=is_group)
    if wait > 0:
        services.telegram_reply_release(update_id=head.update_id, lease=lease)
        _serve_later(client, head.update_id, chat_id, wait)
        return False
    try:
        _send(client, head.reply, is_group=is_group, slot_taken=True)
    except TelegramRateLimited as exc:
        # Telegram asked for a pause longer than a reply may wait: the reply keeps its place in the queue.
        services.telegram_reply_release(update_id=head.update_id, lease=lease)
        _serve_later(client, head.update_id, chat_id, exc.retry_after)
        return False
    except TelegramError:
        logger.exception("bot reply failed", extra={"update_id": head.update_id})
    services.telegram_reply_done(update_id=head.update_id)
    return True


def _serve_later(client: TelegramClient, update_id: int, chat_id: int, seconds: float) -> None:
    from notifications.tasks import telegram_update_process_task

    if client.limiter.defer_once(chat_id=chat_id, seconds=seconds):
        try:
            telegram_update_process_task.apply_async(args=[update_id], countdown=seconds)
        except Exception:
            # The reply is stored; the updates sweep queues the chat again.
            logger.exception("could not queue the chat's next reply", extra={"update_id": update_id})


def _reply_payload(chat_id: int, text: str) -> dict[str, Any]:
    return {"chat_id": chat_id, "text": text_clip(text), "parse_mode": "HTML"}


def _send(client: TelegramClient, payload: dict[str, Any], *, is_group: bool = False,
          slot_taken: bool = False) -> None:
    # The alerts' rules: the chat's and the bot's rate limits, and retries of what can be retried
    # (5xx, timeouts, a 429's retry_after) within TELEGRAM_RETRY_BUDGET: the driver is waiting.
    client.chat_call("sendMessage", dict(payload), is_group=is_group, slot_taken=slot_taken)


def _callback_send(client: TelegramClient, answer: BotAnswer) -> None:
    """A pressed button stops spinning at once, whatever happens to the reply."""
    if answer.callback is None:
        return
    try:
        client.call("answerCallbackQuery", answer.callback)
    except TelegramError:
        logger.exception("button press not acknowledged")


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


def _message_answer(message: dict) -> dict[str, Any] | None:
    """The reply to a message (a sendMessage payload), or None when it is not for the bot."""
    text = (message.get("text") or "").strip()
    chat = message.get("chat") or {}
    chat_id = chat.get("id")
    if not text or chat_id is None:
        return None
    if text.startswith("/"):
        head, _, rest = text.partition(" ")
        command = COMMANDS.get(head[1:].split("@", 1)[0].lower())
        args = rest.strip()
    elif _is_group(chat):
        # In a group, chat among people is not addressed to the bot: only commands are answered there.
        return None
    else:
        # Free text in a private chat is a stock question: "tem arroz?" answers as /estoque arroz.
        command, args = "free_text", free_text_term(text)
    return _reply_payload(chat_id, _command_answer(command, args, chat_id, message))


def _command_answer(command: str | None, args: str, chat_id: int, message: dict) -> str:
    driver = selectors.driver_by_chat(chat_id=chat_id)
    language = _language(driver, message)
    if command == "start":
        linked = services.driver_link_redeem(token=args, chat_id=chat_id, is_group=_is_group(message["chat"]))
        if linked is None:
            return t(language, "not_linked" if not args else "link_invalid")
        greeting = "linked" if not linked.is_buyer else "linked_both" if linked.is_driver else "linked_buyer"
        return t(linked.language, greeting, name=escape(linked.name))
    if command == "help":
        return t(language, "help")
    if driver is None:
        return t(language, "not_linked")
    if command == "stock":
        return stock_answer(language=language, term=args, locations=selectors.driver_locations(driver))
    if command == "free_text":
        if not args:
            return t(language, "free_text_unclear")
        return stock_answer(language=language, term=args, locations=selectors.driver_locations(driver))
    if command == "low":
        return low_answer(driver=driver)
    if command == "ruptura":
        return ruptura_answer(driver=driver)
    if command == "mute":
        return mute_answer(driver=driver, args=args)
    if command == "compras":
        return compras_answer(driver=driver)
    return t(language, "unknown")


def _stock_line(language: str, stock: Stock) -> str:
    """One product's stock; with nothing available, what to offer instead there (see substitutes_for)."""
    product = stock.product
    available = stock.on_hand - stock.reserved
    text = t(language, "stock_line", name=escape(product.name), code=escape(product.code),
             on_hand=stock.on_hand, reserved=stock.reserved, available=available)
    if selectors.locations_several():
        text += f"\n📍 {escape(stock.location.name)}"
    substitutes = selectors.substitutes_for(product=product, location_id=stock.location_id) if available <= 0 else []
    return text + texts.substitutes_line(language, substitutes) if substitutes else text


def product_stock_answer(*, language: str, product: Product, locations: list[Location]) -> str:
    """One product's stock at each of these locations: the one-location answer for one, one line per location
    for several (with substitutes at the first one when none has anything available)."""
    if len(locations) == 1:
        return _stock_line(language, stock_at(product=product, location=locations[0]))
    stocks = stocks_of_product(product=product, locations=locations)
    lines = [t(language, "stock_head", name=escape(product.name), code=escape(product.code))]
    lines += [t(language, "stock_at", location=escape(s.location.name), on_hand=s.on_hand, reserved=s.reserved,
                available=s.on_hand - s.reserved) for s in stocks]
    text = "\n".join(lines)
    if all(s.on_hand - s.reserved <= 0 for s in stocks):
        substitutes = selectors.substitutes_for(product=product, location_id=locations[0].pk)
        if substitutes:
            text += texts.substitutes_line(language, substitutes)
    return text


def stock_answer(*, language: str, term: str, locations: list[Location] | None = None) -> str:
    """``/estoque`` (and free text): the product a code, unified code or name means, else the closest
    matches with what each has available (at these locations together), else "not found": never both.
    ``locations``: the recipient's (the default one when None)."""
    if not term:
        return t(language, "usage_stock")
    locations = locations or [location_default()]
    product, matches = selectors.product_find(term=term, locations=locations)
    if product is not None:
        return product_stock_answer(language=language, product=product, locations=locations)
    if not matches:
        return t(language, "not_found", term=escape(term))
    lines = [t(language, "matches", term=escape(term))]
    lines += [f"• {escape(p.name)} ({escape(p.code)}): {p.available}" for p in matches]
    return "\n".join(lines)


def _stock_item(stock: Stock, value: Any, *, named: bool) -> str:
    """"• Arroz (ARR-1): 3", with " · 📍 Loja Centro" when the recipient has several locations."""
    where = texts.location_suffix(stock.location.name) if named else ""
    return f"• {escape(stock.product.name)} ({escape(stock.product.code)}): {value}{where}"


def low_answer(*, driver: Driver) -> str:
    """``/baixo``: what is below threshold at each of the driver's locations."""
    places = selectors.driver_locations(driver)
    stocks = selectors.driver_low_stocks(driver=driver, locations=places)
    if not stocks:
        return t(driver.language, "low_none")
    lines = [t(driver.language, "low_title", n=len(stocks))]
    lines += [_stock_item(s, s.on_hand - s.reserved, named=len(places) > 1) for s in stocks]
    return "\n".join(lines)


def ruptura_answer(*, driver: Driver) -> str:
    """``/ruptura``: what is out now at the driver's locations first, then stockouts projected within the window
    (the API's ruptures list), kept to the products the driver follows: one query each for all its locations."""
    days, language = settings.ALERT_PROJECTION_DAYS, driver.language
    places = selectors.driver_locations(driver)
    location_ids, named = [place.pk for place in places], len(places) > 1
    out_now = projection_out_now(location_ids=location_ids)
    # Soonest first; a day's products by code then location, whatever the locations' ids.
    projected = projection_ruptures(days=days, location_ids=location_ids).order_by(
        "stockout_date", "product__code", "location__code")
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
        lines += [_stock_item(s, s.on_hand - s.reserved, named=named) for s in out_rows[:RUPTURA_LINES_MAX]]
    if projected_rows[:room]:
        lines.append(t(language, "ruptura_title", days=days))
        lines += [f"• {escape(s.product.name)} ({escape(s.product.code)}): {s.stockout_date:%d/%m}"
                  f"{texts.location_suffix(s.location.name) if named else ''}" for s in projected_rows[:room]]
    if len(out_rows) > RUPTURA_LINES_MAX or len(projected_rows) > room:
        lines.append(t(language, "ruptura_more"))
    return "\n".join(lines)


def compras_answer(*, driver: Driver) -> str:
    """``/compras``: the buyers' digest on demand: the open reorder suggestions the buyer follows at their
    locations (each line naming its location when they have several), most urgent first, with the total, in one
    message (what does not fit is counted in "… e mais N"). Buyers only."""
    language = driver.language
    if not driver.is_buyer:
        return t(language, "reorder_not_buyer")
    places = selectors.driver_locations(driver)
    lines = selectors.reorder_digest_lines_for(driver, selectors.reorder_digest_lines(), places)
    if not lines:
        return t(language, "reorder_none")
    [text] = texts.reorder_digest_render(language, lines, day=timezone.localdate(), max_parts=1,
                                         with_location=len(places) > 1)
    return text


def mute_answer(*, driver: Driver, args: str) -> str:
    if not driver.is_driver:
        return t(driver.language, "mute_not_driver")
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


def _callback_answer(query: dict) -> BotAnswer:
    """Buttons under alerts: ``s:<product id>`` shows stock, ``m:<product id>:<hours>`` mutes. Always answered."""
    data = str(query.get("data") or "")
    chat = (query.get("message") or {}).get("chat") or {}
    chat_id = chat.get("id")
    driver = selectors.driver_by_chat(chat_id=chat_id) if chat_id is not None else None
    language = driver.language if driver else "pt-br"
    answer = BotAnswer()
    notice = ""
    try:
        parts = data.split(":")
        product = Product.objects.filter(pk=int(parts[1])).first() if len(parts) >= 2 else None
        if driver is not None and product is not None and parts[0] == "s":
            text = product_stock_answer(language=language, product=product,
                                        locations=selectors.driver_locations(driver))
            answer.reply = _reply_payload(chat_id, text)
        elif driver is not None and driver.is_driver and product is not None and parts[0] == "m":
            hours = float(parts[2]) if len(parts) > 2 else 1.0
            services.driver_mute(driver=driver, product=product, hours=min(max(hours, 0.1), MUTE_MAX_HOURS))
            notice = t(language, "muted", name=product.name, hours=f"{hours:g}").replace("<b>", "").replace("</b>", "")
    except (ValueError, Stock.DoesNotExist):
        notice = ""
    answer.callback = {"callback_query_id": query.get("id"), "text": notice[:200]}
    return answer
