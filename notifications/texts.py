"""What the bot says, in Portuguese (default) and English: alert messages, digests, the buyers' reorder digest and
command replies (HTML)."""
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from django.utils import timezone

from notifications.telegram import TEXT_LIMIT, escape

TEXTS: dict[str, dict[str, str]] = {
    "pt-br": {
        "low": "⚠️ <b>Estoque baixo</b>",
        "out": "⛔ <b>Sem estoque</b>",
        "projected": "📉 <b>Ruptura prevista</b>",
        "resolved": "✅ <b>De volta ao estoque</b>",
        "available": "Disponível",
        "at_time": "às {time}",
        "at_day_time": "em {day} às {time}",
        "stockout_on": "ruptura em",
        "substitutes": "Substitutos",
        "digest": "🔔 <b>{n} alertas de estoque</b>",
        "more": "+{n} mais",
        "btn_stock": "Ver estoque",
        "btn_mute": "Silenciar 1h",
        "stock_line": "<b>{name}</b> ({code})\nEm estoque: {on_hand} · Reservado: {reserved} · Disponível: {available}",
        "stock_head": "<b>{name}</b> ({code})",
        "stock_at": "📍 {location}: em estoque {on_hand} · reservado {reserved} · disponível {available}",
        "not_found": "Nenhum produto encontrado para “{term}”.",
        "matches": "Produtos para “{term}”:",
        "usage_stock": "Use: /estoque &lt;código ou nome&gt;",
        "usage_mute": "Use: /silenciar &lt;código&gt; &lt;horas&gt;",
        "muted": "🔕 Alertas de <b>{name}</b> silenciados por {hours} h.",
        "low_none": "Nenhum produto abaixo do limite nas suas inscrições.",
        "low_title": "<b>Abaixo do limite</b> ({n}):",
        "ruptura_none": "Nenhuma ruptura prevista nos próximos {days} dias.",
        "ruptura_title": "<b>Rupturas previstas</b> (até {days} dias):",
        "ruptura_out_title": "<b>Sem estoque agora</b> ({n}):",
        "ruptura_more": "… e outros: veja o painel.",
        "free_text_unclear": "Não entendi. Envie o nome ou o código de um produto, ou /ajuda.",
        "linked": "✅ Olá, {name}! Este chat vai receber os alertas de estoque. /ajuda mostra os comandos.",
        "linked_buyer": ("✅ Olá, {name}! Este chat vai receber o resumo diário das sugestões de compra. "
                         "/ajuda mostra os comandos."),
        "linked_both": ("✅ Olá, {name}! Este chat vai receber os alertas de estoque e o resumo diário das "
                        "sugestões de compra. /ajuda mostra os comandos."),
        "link_invalid": "Este link de vinculação é inválido ou expirou. Peça um novo à loja.",
        "not_linked": "Este chat não está vinculado. Use o link que a loja enviou.",
        "help": ("<b>Comandos</b>\n/estoque &lt;código ou nome&gt; — estoque e disponibilidade\n"
                 "/baixo — produtos abaixo do limite\n/ruptura — sem estoque agora e rupturas previstas em 7 dias\n"
                 "/silenciar &lt;código&gt; &lt;horas&gt; — pausar alertas de um produto\n"
                 "/compras — sugestões de compra abertas (compradores)\n/ajuda — esta ajuda\n"
                 "Ou pergunte com suas palavras: “tem arroz?”"),
        "unknown": "Comando desconhecido. /ajuda mostra os comandos.",
        "done": "Feito",
        "mute_not_driver": "Só entregadores recebem alertas de estoque; não há alertas a silenciar neste chat.",
        "reorder_title": "🛒 <b>Sugestões de compra</b> — {day}",
        "reorder_line": "{n}. <b>{name}</b> ({code}) — pedir {quantity} un.",
        "reorder_packs": " ({packs} emb. de {pack})",
        "reorder_stockout": " · ruptura {day}",
        "reorder_stockout_today": " · ruptura hoje",
        "reorder_no_stockout": " · sem ruptura prevista",
        "reorder_total": "<b>Total:</b> {n} {products} · {units} unidades · {packs} embalagens",
        "products_one": "produto",
        "products_many": "produtos",
        "reorder_more": "… e mais {n} produtos: veja a lista completa no painel ou na exportação.",
        "reorder_none": "Nenhuma sugestão de compra aberta.",
        "reorder_not_buyer": "O /compras é para compradores. Peça à loja para incluir você como comprador.",
    },
    "en": {
        "low": "⚠️ <b>Low stock</b>",
        "out": "⛔ <b>Out of stock</b>",
        "projected": "📉 <b>Projected stockout</b>",
        "resolved": "✅ <b>Back in stock</b>",
        "available": "Available",
        "at_time": "at {time}",
        "at_day_time": "on {day} at {time}",
        "stockout_on": "stockout on",
        "substitutes": "Substitutes",
        "digest": "🔔 <b>{n} stock alerts</b>",
        "more": "+{n} more",
        "btn_stock": "View stock",
        "btn_mute": "Mute 1h",
        "stock_line": "<b>{name}</b> ({code})\nOn hand: {on_hand} · Reserved: {reserved} · Available: {available}",
        "stock_head": "<b>{name}</b> ({code})",
        "stock_at": "📍 {location}: on hand {on_hand} · reserved {reserved} · available {available}",
        "not_found": "No product found for “{term}”.",
        "matches": "Products for “{term}”:",
        "usage_stock": "Use: /stock &lt;code or name&gt;",
        "usage_mute": "Use: /mute &lt;code&gt; &lt;hours&gt;",
        "muted": "🔕 Alerts about <b>{name}</b> muted for {hours} h.",
        "low_none": "No product below its threshold in your subscriptions.",
        "low_title": "<b>Below threshold</b> ({n}):",
        "ruptura_none": "No stockout projected in the next {days} days.",
        "ruptura_title": "<b>Projected stockouts</b> (within {days} days):",
        "ruptura_out_title": "<b>Out of stock now</b> ({n}):",
        "ruptura_more": "… and more: see the dashboard.",
        "free_text_unclear": "I did not understand. Send a product's name or code, or /help.",
        "linked": "✅ Hello, {name}! This chat will receive stock alerts. /help lists the commands.",
        "linked_buyer": "✅ Hello, {name}! This chat will receive the daily reorder digest. /help lists the commands.",
        "linked_both": ("✅ Hello, {name}! This chat will receive stock alerts and the daily reorder digest. "
                        "/help lists the commands."),
        "link_invalid": "This link is invalid or has expired. Ask the shop for a new one.",
        "not_linked": "This chat is not linked. Use the link the shop sent you.",
        "help": ("<b>Commands</b>\n/stock &lt;code or name&gt; — stock and availability\n"
                 "/low — products below threshold\n/ruptura — out of stock now and stockouts projected within 7 days\n"
                 "/mute &lt;code&gt; &lt;hours&gt; — pause alerts about a product\n"
                 "/reorder — open reorder suggestions (buyers)\n/help — this help\n"
                 "Or just ask: “any rice?”"),
        "unknown": "Unknown command. /help lists the commands.",
        "done": "Done",
        "mute_not_driver": "Only drivers get stock alerts; this chat has none to mute.",
        "reorder_title": "🛒 <b>Reorder suggestions</b> — {day}",
        "reorder_line": "{n}. <b>{name}</b> ({code}) — order {quantity} units",
        "reorder_packs": " ({packs} packs of {pack})",
        "reorder_stockout": " · stockout {day}",
        "reorder_stockout_today": " · stockout today",
        "reorder_no_stockout": " · no stockout projected",
        "reorder_total": "<b>Total:</b> {n} {products} · {units} units · {packs} packs",
        "products_one": "product",
        "products_many": "products",
        "reorder_more": "… and {n} more products: see the full list on the dashboard or in the export.",
        "reorder_none": "No open reorder suggestion.",
        "reorder_not_buyer": "/reorder is for buyers. Ask the shop to add you as a buyer.",
    },
}


def t(language: str, key: str, **values) -> str:
    table = TEXTS.get(language) or TEXTS["pt-br"]
    text = table[key]
    return text.format(**values) if values else text


@dataclass(frozen=True)
class AlertLine:
    """What one outbox row shows; every field is escaped when rendered."""

    product_id: int
    code: str
    name: str
    level: str
    available: int
    stockout_date: date | None = None
    # (code, name) to offer instead; digests show them for products that are out.
    substitutes: tuple[tuple[str, str], ...] = ()
    # When the stock change behind this content happened (not when the message goes out).
    changed_at: datetime | None = None
    # Where: the location's name, shown only when the install has more than one active location ("" otherwise).
    location: str = ""


def changed_when(language: str, at: datetime, *, today: date | None = None) -> str:
    """"às 14:32" in the store's time zone (TIME_ZONE), "em 03/12 às 14:32" when that is not today."""
    local = timezone.localtime(at)
    if local.date() == (today or timezone.localdate()):
        return t(language, "at_time", time=f"{local:%H:%M}")
    return t(language, "at_day_time", day=f"{local:%d/%m}", time=f"{local:%H:%M}")


def substitutes_line(language: str, substitutes: Sequence[tuple[str, str]]) -> str:
    """"\nSubstitutos: Sal grosso (SAL-2), …" for a non-empty list of (code, name)."""
    names = ", ".join(f"{escape(name)} ({escape(code)})" for code, name in substitutes)
    return f"\n{t(language, 'substitutes')}: {names}"


def location_suffix(location: str) -> str:
    """" · 📍 Loja Centro" for a location to name, "" for none."""
    return f" · 📍 {escape(location)}" if location else ""


def _line(language: str, line: AlertLine) -> str:
    text = f"{t(language, line.level)}: <b>{escape(line.name)}</b> ({escape(line.code)})"
    text += location_suffix(line.location)
    if line.level == "projected" and line.stockout_date:
        text = f"{text} — {t(language, 'stockout_on')} {line.stockout_date:%d/%m}"
    else:
        text = f"{text} — {t(language, 'available')}: {line.available}"
    if line.changed_at:
        text += f" · {changed_when(language, line.changed_at)}"
    if line.substitutes and line.level == "out":
        text += substitutes_line(language, line.substitutes).replace("\n", "\n  ", 1)
    return text


def alert_render(language: str, line: AlertLine, substitutes: Sequence[tuple[str, str]] = ()) -> str:
    """One alert in one message, with its substitutes when the product is low or out."""
    title = t(language, line.level)
    if line.changed_at:
        title += f" {changed_when(language, line.changed_at)}"
    text = f"{title}\n<b>{escape(line.name)}</b> ({escape(line.code)})"
    if line.location:
        text += f"\n📍 {escape(line.location)}"
    if line.level == "projected" and line.stockout_date:
        text += f"\n{t(language, 'stockout_on')} {line.stockout_date:%d/%m/%Y}"
    else:
        text += f"\n{t(language, 'available')}: {line.available}"
    if substitutes and line.level in ("low", "out"):
        text += substitutes_line(language, substitutes)
    return text[:TEXT_LIMIT]


def digest_render(language: str, lines: Sequence[AlertLine]) -> str:
    """Many alerts in one message within 4,096 characters; what does not fit becomes "+N more"."""
    header = t(language, "digest", n=len(lines))
    parts = [header]
    used = len(header)
    for index, line in enumerate(lines):
        rendered = "\n• " + _line(language, line)
        rest = len(lines) - index - 1
        reserve = len("\n" + t(language, "more", n=len(lines))) if rest else 0
        if used + len(rendered) + reserve > TEXT_LIMIT:
            parts.append("\n" + t(language, "more", n=len(lines) - index))
            break
        parts.append(rendered)
        used += len(rendered)
    return "".join(parts)


def alert_buttons(language: str, product_id: int) -> dict:
    """Inline keyboard of a single alert; callback data stays far below Telegram's 64 bytes."""
    return {"inline_keyboard": [[
        {"text": t(language, "btn_stock"), "callback_data": f"s:{product_id}"},
        {"text": t(language, "btn_mute"), "callback_data": f"m:{product_id}:1"},
    ]]}


@dataclass(frozen=True)
class ReorderLine:
    """One open reorder suggestion as the buyers' digest shows it; every field is escaped when rendered.

    ``pack_size`` is None when the product has no supply terms any more (then no packs are shown);
    ``stockout_date`` is the stockout day at the current pace (None: none projected).
    """

    product_id: int
    code: str
    name: str
    category: str
    quantity: int
    pack_size: int | None
    stockout_date: date | None
    location_id: int | None = None
    # The location's name, shown when the buyer follows several locations.
    location: str = ""

    @property
    def packs(self) -> int | None:
        return -(-self.quantity // self.pack_size) if self.pack_size else None


def number(language: str, value: int) -> str:
    """12345 → "12.345" in Portuguese, "12,345" in English."""
    text = f"{value:,}"
    return text.replace(",", ".") if language != "en" else text


def _reorder_line(language: str, index: int, line: ReorderLine, day: date, *, with_location: bool) -> str:
    text = _reorder_line_figures(language, index, line, day)
    return text + location_suffix(line.location) if with_location else text


def _reorder_line_figures(language: str, index: int, line: ReorderLine, day: date) -> str:
    text = t(language, "reorder_line", n=index, name=escape(line.name), code=escape(line.code),
             quantity=number(language, line.quantity))
    if line.pack_size:
        text += t(language, "reorder_packs", packs=number(language, line.packs),
                  pack=number(language, line.pack_size))
    if line.stockout_date is None:
        return text + t(language, "reorder_no_stockout")
    if line.stockout_date <= day:
        return text + t(language, "reorder_stockout_today")
    return text + t(language, "reorder_stockout", day=f"{line.stockout_date:%d/%m}")


def reorder_digest_render(language: str, lines: Sequence[ReorderLine], *, day: date, max_parts: int | None = None,
                          limit: int = TEXT_LIMIT, with_location: bool = False) -> list[str]:
    """The reorder digest as Telegram messages of at most ``limit`` characters each: the lines in the order
    given (most urgent first), a title on every part ("(1/3)" when there are several) and the total on the last.
    ``with_location``: each line names its location (a buyer of several locations).

    With ``max_parts``, what does not fit in that many parts becomes "… and N more" before the total (the
    total still counts every line). No lines, no messages.
    """
    if not lines:
        return []
    packs = sum(line.packs or 0 for line in lines)
    products = t(language, "products_one" if len(lines) == 1 else "products_many")
    total = "\n\n" + t(language, "reorder_total", n=number(language, len(lines)), products=products,
                        units=number(language, sum(line.quantity for line in lines)), packs=number(language, packs))
    title = t(language, "reorder_title", day=f"{day:%d/%m}")
    title_room = len(title) + len(" (999/999)")
    rendered = ["\n" + _reorder_line(language, i, line, day, with_location=with_location)
                for i, line in enumerate(lines, start=1)]

    parts: list[list[str]] = [[]]
    used = title_room
    for index, text in enumerate(rendered):
        tail = len(total) if index == len(rendered) - 1 else 0
        if parts[-1] and used + len(text) + tail > limit:
            parts.append([])
            used = title_room
        parts[-1].append(text)
        used += len(text)
    more = ""
    if max_parts is not None and len(parts) > max_parts:
        parts = parts[:max_parts]
        room = len("\n" + t(language, "reorder_more", n=number(language, len(lines)))) + len(total)
        while parts[-1] and title_room + sum(map(len, parts[-1])) + room > limit:
            parts[-1].pop()
        more = "\n" + t(language, "reorder_more", n=number(language, len(lines) - sum(map(len, parts))))

    messages = []
    for number_, chunk in enumerate(parts, start=1):
        head = title if len(parts) == 1 else f"{title} ({number_}/{len(parts)})"
        text = head + "".join(chunk)
        if number_ == len(parts):
            text += more + total
        messages.append(text)
    return messages
