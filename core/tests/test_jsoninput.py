"""Tests for the JSON input rules: numbers within float range, no NUL character, the rest as json.loads reads it,
and only the keys a body takes."""
import pytest
from django.utils import translation
from rest_framework import serializers

from core.errors import ValidationFailed
from core.jsoninput import JSONInputError, StrictInputSerializer, fields_unknown_refuse, json_input_loads


def test_ordinary_json_reads_as_json_loads_reads_it():
    text = '{"lines": [{"code": "CAFE-1", "quantity": 2}], "ttl_seconds": 60, "price": 2.5, "note": null}'

    assert json_input_loads(text) == {"lines": [{"code": "CAFE-1", "quantity": 2}], "ttl_seconds": 60,
                                      "price": 2.5, "note": None}
    assert json_input_loads(b'[1, "\\u00e7"]') == [1, "ç"]


@pytest.mark.parametrize("text", ['{"quantity": 1e400}', '[-1e400]', '{"a": {"b": [1.5e309]}}'])
def test_a_number_past_the_float_range_is_refused_not_read_as_infinity(text):
    with translation.override("en"), pytest.raises(JSONInputError, match="out of range"):
        json_input_loads(text)


@pytest.mark.parametrize("text", ['{"quantity": NaN}', '[Infinity]', '[-Infinity]'])
def test_the_non_standard_constants_are_refused(text):
    with translation.override("en"), pytest.raises(JSONInputError, match="not a number"):
        json_input_loads(text)


@pytest.mark.parametrize("text", ['{"code": "A\\u0000"}', '{"A\\u0000": 1}', '[[{"deep": ["x\\u0000y"]}]]'])
def test_a_nul_character_anywhere_is_refused(text):
    with pytest.raises(JSONInputError, match="NUL"):
        json_input_loads(text)


def test_an_escaped_backslash_before_u0000_is_text_not_nul():
    assert json_input_loads('{"note": "C:\\\\u0000"}') == {"note": "C:\\u0000"}


def test_malformed_json_is_still_a_value_error():
    with pytest.raises(ValueError):
        json_input_loads("{not json")


class _Sample(StrictInputSerializer):
    code = serializers.CharField()
    quantity = serializers.IntegerField(required=False)


def test_a_strict_serializer_takes_its_own_fields():
    sample = _Sample(data={"code": "A", "quantity": 2})

    assert sample.is_valid() and sample.validated_data == {"code": "A", "quantity": 2}


def test_a_strict_serializer_refuses_every_unknown_key_naming_them_and_its_fields():
    with translation.override("en"), pytest.raises(ValidationFailed) as refused:
        _Sample(data={"code": "A", "qty": 2, "sku": "B"}).is_valid()

    assert refused.value.details == {"unknown_fields": ["qty", "sku"], "allowed": ["code", "quantity"]}
    assert refused.value.message == "Unknown field: qty, sku. Known fields: code, quantity."


def test_unknown_keys_of_a_nested_object_are_named_with_where_they_are():
    with pytest.raises(ValidationFailed) as refused:
        fields_unknown_refuse({"code": "A", "loc": "X"}, allowed={"code", "location"}, where="lines[3].")

    assert refused.value.details["unknown_fields"] == ["lines[3].loc"]
