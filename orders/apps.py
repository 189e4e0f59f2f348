"""App configuration for orders."""
from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = _("Orders")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core.pipelines import backlog_reader_register
        from orders.selectors import orders_backlog

        backlog_reader_register("orders", orders_backlog)
