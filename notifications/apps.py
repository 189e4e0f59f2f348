"""App configuration for notifications."""
from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = _("Notifications")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core.pipelines import backlog_reader_register
        from notifications.selectors import alert_outbox_backlog

        backlog_reader_register("alerts", alert_outbox_backlog)
