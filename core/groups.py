"""Channel-layer group names for realtime events: one helper so publisher and consumers always agree.

Channels accepts group names of ASCII letters, digits, ``-``, ``_`` and ``.``, shorter than 100
characters. Product codes may hold ``/`` and categories are free text (accents, spaces), so
anything outside the safe alphabet is replaced by a digest under a different prefix: two distinct
codes or categories never share a group.

Every group belongs to one location, so a socket that follows location A is never handed B's
traffic. The default location (``DEFAULT_LOCATION_CODE``) keeps the names it had before locations
existed (``stock.all``, ``stock.code.<CODE>``, ...); another location's names carry it
(``stock.l.<LOC>.all``, ``stock.l.<LOC>.code.<CODE>``, ...). An event that names no location belongs
to the default one, as every route that names none does.
"""
import hashlib
import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings

GROUP_ALL = "stock.all"
_CODE_PREFIX = "code."
_CODE_DIGEST_PREFIX = "codeh."
_CATEGORY_PREFIX = "cath."
_ALL = "all"
_SAFE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Short enough that a location prefix plus the longest safe code stays under 100 characters.
_SAFE_LOCATION = re.compile(r"^[A-Za-z0-9_-]{1,20}$")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _default_location() -> str:
    return settings.DEFAULT_LOCATION_CODE


def _prefix(location: str | None) -> str:
    """``stock.`` for the default location (and None), ``stock.l.<LOC>.`` (or a digest) for another."""
    if not location or location == _default_location():
        return "stock."
    if _SAFE_LOCATION.match(location):
        return f"stock.l.{location}."
    return f"stock.lh.{_digest(location)[:16]}."


def group_all(location: str | None = None) -> str:
    """Every event of one location (the default one when None)."""
    return _prefix(location) + _ALL


def group_for_code(code: str, location: str | None = None) -> str:
    """The group of one canonical product code (already normalised by the caller) at one location."""
    if _SAFE.match(code):
        return _prefix(location) + _CODE_PREFIX + code
    return _prefix(location) + _CODE_DIGEST_PREFIX + _digest(code)


def category_key(category: str) -> str:
    """Categories match case-insensitively, as the stock list filter does."""
    return " ".join(category.split()).casefold()


def group_for_category(category: str, location: str | None = None) -> str:
    return _prefix(location) + _CATEGORY_PREFIX + _digest(category_key(category))


def _lines_by_location(event: dict[str, Any], own: str) -> dict[str, list[dict[str, Any]]]:
    """{location code: the event's lines there}; a line without a location is at the event's."""
    lines: dict[str, list[dict[str, Any]]] = {}
    for line in event.get("lines") or ():
        if isinstance(line, dict) and line.get("code"):
            lines.setdefault(str(line.get("location") or own), []).append(line)
    return lines


def events_per_location(event: dict[str, Any]) -> list[tuple[dict[str, Any], list[str]]]:
    """The event as each location it names sees it, with that location's groups: everyone there, each
    code it names there, and its category when it has one. An event with lines at several locations (a
    cart at two stores) becomes one event per location carrying only the lines there, the same event
    otherwise, so a socket following A is never handed B's codes and quantities. An event without a
    location is at the default one."""
    own = str(event.get("location") or _default_location())
    lines = _lines_by_location(event, own)
    places = list(dict.fromkeys(([own] if event.get("code") or not lines else []) + list(lines)))
    parts = []
    for location in places:
        part = event if len(places) == 1 else {**event, "lines": lines.get(location, [])}
        codes = ([str(event["code"])] if event.get("code") and location == own else [])
        codes += [str(line["code"]) for line in lines.get(location, ())]
        groups = [group_all(location)] + [group_for_code(code, location) for code in dict.fromkeys(codes)]
        if event.get("category"):
            groups.append(group_for_category(str(event["category"]), location))
        parts.append((part, groups))
    return parts


def groups_for_subscription(*, codes: Iterable[str] = (), categories: Iterable[str] = (), everything: bool,
                            locations: Iterable[str | None] = (None,)) -> set[str]:
    """The groups of a socket's subscription at each of its locations (the default one unless named)."""
    codes, categories = list(codes), list(categories)
    groups: set[str] = set()
    for location in locations:
        if everything:
            groups.add(group_all(location))
            continue
        groups |= {group_for_code(c, location) for c in codes} | {group_for_category(c, location) for c in categories}
    return groups
