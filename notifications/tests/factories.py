"""Factories for notifications: linked drivers with a chat id."""
import factory

from notifications.models import Driver


class DriverFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Driver
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Driver {n}")
    chat_id = factory.Sequence(lambda n: 5_000_000 + n)
    language = "pt-br"
