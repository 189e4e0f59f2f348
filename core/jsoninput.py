"""JSON input of every entry point (API bodies, the reservation fast path, stock imports, WebSocket
messages): what the standard parser accepts, less what the service could never store or answer, and only
the keys a body takes.

Python reads a number past the float range (``1e400``) as infinity, which no quantity or duration
can be and which strict JSON cannot even write back in an error's details; and PostgreSQL text and
jsonb cannot hold the NUL character. Both are refused where the JSON is read, as malformed input,
so no field can let them through to a query.
"""
import codecs
import json
import math
from collections.abc import Collection, Mapping
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from core.errors import ValidationFailed


class JSONInputError(ValueError):
    """Valid JSON that the service refuses to read (a number out of range, a NUL character)."""


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JSONInputError(_("number %(number)s is out of range") % {"number": text[:40]})
    return value


def _no_constant(name: str) -> None:
    raise JSONInputError(_("%(name)s is not a number") % {"name": name})


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def json_input_loads(text: str | bytes) -> Any:
    """``json.loads`` for input: raises ValueError (JSONDecodeError or JSONInputError) on what it refuses."""
    data = json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
    if _has_nul(data):
        raise JSONInputError(_("text cannot contain the NUL character (\\u0000)"))
    return data


class JSONInputRefused(ParseError):
    """A body that is JSON but holds what the service refuses to read (``JSONInputError``); a 400 like any
    malformed body, told apart for callers that must not be answered so (the Telegram webhook)."""


class InputJSONParser(JSONParser):
    """DRF's JSON parser on ``json_input_loads``: refused input is a 400 ``malformed_request``."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json_input_loads(codecs.getreader(encoding)(stream).read())
        except JSONInputError as exc:
            raise JSONInputRefused(_("JSON parse error - %(error)s") % {"error": exc}) from None
        except json.JSONDecodeError as exc:
            # Python's own reason is English: the place of the error is what the message can carry.
            raise ParseError(_("JSON parse error at line %(line)d, column %(column)d.")
                             % {"line": exc.lineno, "column": exc.colno}) from None
        except ValueError:
            raise ParseError(_("JSON parse error: the body is not %(encoding)s text.")
                             % {"encoding": encoding}) from None


def keys_unknown(data: Mapping, allowed: Collection[str]) -> tuple[str, ...]:
    """The keys of ``data`` that are not in ``allowed``, sorted."""
    return tuple(sorted(str(key) for key in data if key not in allowed))


def fields_unknown_refuse(data: Mapping, *, allowed: Collection[str], where: str = "") -> None:
    """ValidationFailed naming every key of ``data`` not in ``allowed`` (``where`` prefixes them, "lines[2]."
    say), with the keys it takes. A key is refused, not ignored: a misspelt optional key ("loc",
    "threshold") would otherwise act at the default location, or change nothing, and answer success."""
    if all(key in allowed for key in data):
        return
    unknown = [f"{where}{key}" for key in keys_unknown(data, allowed)]
    known = sorted(allowed)
    raise ValidationFailed(
        _("Unknown field: %(fields)s. Known fields: %(allowed)s.") % {"fields": ", ".join(unknown),
                                                                        "allowed": ", ".join(known)},
        details={"unknown_fields": unknown, "allowed": known})


class StrictInputSerializer(serializers.Serializer):
    """The serializer of an API body: keys it has no field for are refused (fields_unknown_refuse), where
    DRF's own Serializer drops them silently; so are those of the objects in a list of strict serializers
    (``lines = LineSerializer(many=True)``), named with their place: "lines[2].loc"."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            fields_unknown_refuse(data, allowed=self.fields.keys())
            for name, field in self.fields.items():
                if isinstance(field, serializers.ListSerializer) and isinstance(field.child, StrictInputSerializer):
                    _items_unknown_refuse(data.get(name), allowed=field.child.fields.keys(), name=name)
        return super().to_internal_value(data)


def _items_unknown_refuse(items: Any, *, allowed: Collection[str], name: str) -> None:
    for index, item in enumerate(items if isinstance(items, list) else ()):
        if isinstance(item, Mapping):
            fields_unknown_refuse(item, allowed=allowed, where=f"{name}[{index}].")
