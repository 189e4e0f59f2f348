"""Tests for the language of error answers: one per request, from Accept-Language, pt-BR when it says nothing."""
import pytest
from django.utils import translation
from rest_framework.test import APIClient

from core.i18n import language_from_accept
from inventory.tests.factories import ProductFactory

# (Accept-Language sent, the language of the answer): nothing and pt-BR give Portuguese, en English.
ASKED = [pytest.param(None, "pt-br", id="none"), pytest.param("pt-BR", "pt-br", id="pt-BR"),
         pytest.param("en", "en", id="en")]


def _language(accept: str | None) -> dict[str, str]:
    return {} if accept is None else {"HTTP_ACCEPT_LANGUAGE": accept}


def _in(language: str, *, pt: str, en: str) -> str:
    return pt if language == "pt-br" else en


@pytest.mark.django_db
@pytest.mark.parametrize(("accept", "language"), ASKED)
def test_drf_field_errors_and_the_message_built_from_them_share_one_language(manager, accept, language):
    required = _in(language, pt="Este campo é obrigatório.", en="This field is required.")

    response = manager.post("/api/v1/products", {}, format="json", **_language(accept))

    assert response.status_code == 400
    assert response["Content-Language"] == language
    assert response.json() == {"error": {"code": "invalid", "message": f"code: {required}",
                                         "details": {"code": [required], "name": [required]}}}


@pytest.mark.django_db
@pytest.mark.parametrize(("accept", "language"), ASKED)
def test_a_domain_error_answers_in_the_request_language(manager, accept, language):
    response = manager.post("/api/v1/products", {"code": "NO SPACES!", "name": "Café"}, format="json",
                            **_language(accept))

    assert response.status_code == 400
    assert response["Content-Language"] == language
    assert response.json() == {"error": {"code": "invalid", "message": _in(
        language,
        pt="Um código tem de 1 a 64 caracteres: letras, dígitos e . _ -, começando por letra ou dígito.",
        en="A code is 1-64 characters: letters, digits and . _ -, starting with a letter or digit.",
    ), "details": {"code": "NO SPACES!"}}}


@pytest.mark.django_db
@pytest.mark.parametrize(("accept", "language"), ASKED)
def test_a_message_with_a_value_keeps_the_value_and_the_details_untranslated(reader, accept, language):
    response = reader.get("/api/v1/stock/nope/", **_language(accept))

    assert response.status_code == 404
    assert response["Content-Language"] == language
    assert response.json() == {"error": {"code": "unknown_code", "message": _in(
        language, pt="Nenhum produto tem o código NOPE.", en="No product has the code NOPE."),
        "details": {"code": "NOPE"}}}


@pytest.mark.django_db
@pytest.mark.parametrize(("accept", "language"), ASKED)
def test_malformed_json_is_refused_in_the_request_language_without_python_s_english(manager, accept, language):
    response = manager.post("/api/v1/products", '{"code": ', content_type="application/json", **_language(accept))

    assert response.status_code == 400
    assert response.json()["error"] == {"code": "malformed_request", "message": _in(
        language, pt="Erro de leitura do JSON na linha 1, coluna 10.",
        en="JSON parse error at line 1, column 10."), "details": {}}


@pytest.mark.django_db
@pytest.mark.parametrize(("accept", "language"), ASKED)
def test_an_unknown_token_is_refused_in_the_request_language(accept, language):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer sp_not-a-token")

    response = client.get("/api/v1/stock/", **_language(accept))

    assert response.status_code == 401
    assert response["Content-Language"] == language
    assert response.json()["error"] == {"code": "authentication_failed", "message": _in(
        language, pt="Token inválido ou inativo.", en="Invalid or inactive token."), "details": {}}


@pytest.mark.django_db
@pytest.mark.parametrize(("accept", "language"), ASKED)
def test_a_short_reservation_is_a_409_in_the_request_language(reserver, accept, language):
    ProductFactory(code="I18N-1", on_hand=2)

    response = reserver.post("/api/v1/reservations", {"lines": [{"code": "I18N-1", "quantity": 3}]},
                             format="json", **_language(accept))

    assert response.status_code == 409
    assert response["Content-Language"] == language
    assert response.json() == {"error": {"code": "insufficient_stock", "message": _in(
        language, pt="Estoque insuficiente.", en="Not enough stock available."),
        "details": {"lines": [{"code": "I18N-1", "requested": 3, "available": 2}]}}}


@pytest.mark.parametrize(("accept", "language"), ASKED)
def test_the_url_refusal_before_the_locale_middleware_answers_in_the_request_language(client, accept, language):
    response = client.get("/api/v1/stock/%00/", **_language(accept))

    assert response.status_code == 400
    assert response["Content-Language"] == language
    assert response.json()["error"]["message"] == _in(
        language, pt="A URL não pode conter o caractere NUL (%00).",
        en="The URL cannot contain the NUL character (%00).")


def test_the_json_404_answers_in_the_active_language(client):
    english = client.get("/no-such-page", HTTP_ACCEPT_LANGUAGE="en")
    portuguese = client.get("/no-such-page")

    assert english.status_code == portuguese.status_code == 404
    assert english.json()["error"]["message"] == "Not found."
    assert portuguese.json()["error"]["message"] == "Não encontrado."


@pytest.mark.parametrize("header", [
    "", "en", "EN-us", "en-US,en;q=0.9", "fr, en;q=0.5, pt;q=0.7", "de", "*", "de, *", "pt", "pt-PT",
    "en;q=0.1, pt-br;q=0.9", "x-klingon, en", "en;q=0", "garbage;;;", "pt_BR",
])
def test_the_header_picks_the_language_django_s_middleware_picks(rf, header):
    request = rf.get("/", HTTP_ACCEPT_LANGUAGE=header)

    assert language_from_accept(header) == translation.get_language_from_request(request)


def test_the_default_is_brazilian_portuguese_and_english_is_chosen_by_name():
    assert language_from_accept("") == "pt-br"
    assert language_from_accept("de, fr") == "pt-br"
    assert language_from_accept("en-GB, pt;q=0.5") == "en"
