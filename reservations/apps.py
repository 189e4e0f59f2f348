"""App configuration for reservations."""
from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReservationsConfig(AppConfig):
    name = "reservations"
    verbose_name = _("Reservations")
    default_auto_field = "django.db.models.BigAutoField"
