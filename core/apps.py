"""App configuration for the core app."""
from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = _("API access")
    default_auto_field = "django.db.models.BigAutoField"
