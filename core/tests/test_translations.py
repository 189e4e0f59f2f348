"""The admin speaks pt-BR: every model and field name of our apps is marked for translation and translated."""
import pytest
from django.apps import apps
from django.utils import translation

OUR_APPS = ("core", "inventory", "reservations", "notifications", "projections", "webhooks", "orders")
# Words that read the same in both languages.
SAME_IN_BOTH = {"OK", "ok", "URL", "Webhooks", "id", "payload"}


def _names():
    for model in apps.get_models():
        if model._meta.app_label not in OUR_APPS:
            continue
        yield f"{model.__name__}", model._meta.verbose_name
        yield f"{model.__name__} (plural)", model._meta.verbose_name_plural
        for field in model._meta.get_fields():
            if not field.auto_created and hasattr(field, "verbose_name") and field.name != "id":
                yield f"{model.__name__}.{field.name}", field.verbose_name


@pytest.mark.parametrize("where,name", list(_names()), ids=lambda value: str(value))
def test_every_model_and_field_name_is_translated_to_pt_br(where, name):
    with translation.override("en"):
        english = str(name)
    with translation.override("pt-br"):
        portuguese = str(name)

    assert type(name).__name__ == "__proxy__", f"{where}: {english!r} is not marked for translation"
    assert portuguese != english or english in SAME_IN_BOTH, f"{where}: {english!r} has no pt-BR translation"
