"""Factories for core models: API clients with a known raw token."""
import factory

from core.models import ALL_SCOPES, ApiClient, token_generate, token_hash


class ApiClientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApiClient
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"client-{n}")
    scopes = list(ALL_SCOPES)
    raw_token = factory.LazyFunction(token_generate)
    token_hash = factory.LazyAttribute(lambda o: token_hash(o.raw_token))
    token_hint = factory.LazyAttribute(lambda o: o.raw_token[:10])

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        raw = kwargs.pop("raw_token")
        obj = super()._create(model_class, *args, **kwargs)
        obj.raw_token = raw
        return obj
