"""Channel-layer group names for realtime events: one helper so publisher and consumers always agree.

Channels accepts group names of ASCII letters, digits, ``-``, ``_`` and ``.``, shorter than 100
characters. Product codes may hold ``/`` and categories are free text (accents, spaces), so
anything outside the safe alphabet is replaced by a digest under a different prefix: two distinct
codes or categories never share a group.
"""
import hashlib
import re
from collections.abc import Iterable
from typing import Any

GROUP_ALL = "stock.all"
_CODE_PREFIX = "stock.code."
_CODE_DIGEST_PREFIX = "stock.codeh."
_CATEGORY_PREFIX = "stock.cath."
_SAFE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def group_for_code(code: str) -> str:
    """The group of one canonical product code (already normalised by the caller)."""
    if _SAFE.match(code):
        return _CODE_PREFIX + code
    return _CODE_DIGEST_PREFIX + _digest(code)


def category_key(category: str) -> str:
    """Categories match case-insensitively, as the stock list filter does."""
    return " ".join(category.split()).casefold()


def group_for_category(category: str) -> str:
    return _CATEGORY_PREFIX + _digest(category_key(category))


def _event_codes(event: dict[str, Any]) -> list[str]:
    codes = []
    if event.get("code"):
        codes.append(str(event["code"]))
    for line in event.get("lines") or ():
        if isinstance(line, dict) and line.get("code"):
            codes.append(str(line["code"]))
    return list(dict.fromkeys(codes))


def groups_for_event(event: dict[str, Any]) -> list[str]:
    """Every group an event goes to: everyone, each code it names, and its category when it has one."""
    groups = [GROUP_ALL]
    groups += [group_for_code(code) for code in _event_codes(event)]
    if event.get("category"):
        groups.append(group_for_category(str(event["category"])))
    return groups


def groups_for_subscription(*, codes: Iterable[str] = (), categories: Iterable[str] = (), everything: bool) -> set[str]:
    if everything:
        return {GROUP_ALL}
    return {group_for_code(c) for c in codes} | {group_for_category(c) for c in categories}
