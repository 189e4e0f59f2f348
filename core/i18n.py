"""The language of an answer given outside Django's request cycle: Accept-Language, as LocaleMiddleware reads it."""
from django.conf import settings
from django.utils.translation import get_supported_language_variant
from django.utils.translation.trans_real import language_code_re, parse_accept_lang_header


def language_from_accept(header: str) -> str:
    """The first language of ``header`` (by quality) among LANGUAGES, else LANGUAGE_CODE (pt-BR):
    the Accept-Language half of ``django.utils.translation.get_language_from_request``, on the header
    alone. Both helpers it calls are cached, so a header seen before costs two dictionary lookups."""
    for accept_lang, _quality in parse_accept_lang_header(header):
        if accept_lang == "*":
            break
        if not language_code_re.search(accept_lang):
            continue
        try:
            return get_supported_language_variant(accept_lang)
        except LookupError:
            continue
    try:
        return get_supported_language_variant(settings.LANGUAGE_CODE)
    except LookupError:
        return settings.LANGUAGE_CODE
