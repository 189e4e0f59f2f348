"""App configuration for projections."""
from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ProjectionsConfig(AppConfig):
    name = "projections"
    verbose_name = _("Projections")
    default_auto_field = "django.db.models.BigAutoField"
