"""Admin for orders: status, failure reason and step history, with a retry action for failed orders."""
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.admin_lists import GrowingListAdminMixin
from inventory.admin_scope import LocationListFilter, LocationScopedAdmin
from orders.models import InvoiceSeries, Order, OrderLine, OrderStep
from orders.services import orders_retry


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    can_delete = False
    readonly_fields = ["product", "location", "quantity"]


class OrderStepInline(admin.TabularInline):
    model = OrderStep
    extra = 0
    can_delete = False
    readonly_fields = ["step", "detail", "at"]


@admin.register(Order)
class OrderAdmin(GrowingListAdminMixin, LocationScopedAdmin, admin.ModelAdmin):
    """Staff limited to some locations see the orders with a line at one of them, and retry only those
    whose every line is at theirs."""

    list_display = ["id", "status", "invoice_number", "client", "reference", "created_at", "processed_at"]
    list_filter = [LocationListFilter, "status"]
    search_fields = ["id", "reference", "idempotency_key"]
    readonly_fields = [f.name for f in Order._meta.fields if f.name != "request_fingerprint"]
    exclude = ["request_fingerprint"]
    inlines = [OrderLineInline, OrderStepInline]
    actions = ["retry"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def rows_at(self, queryset, codes):
        return queryset.touching_locations(codes)

    def rows_elsewhere(self, queryset, codes):
        return queryset.touching_elsewhere(codes)

    @admin.action(description=_("Retry failed orders"))
    def retry(self, request, queryset):
        queryset = self.rows_acted_on(request, queryset)
        count = orders_retry(order_ids=list(queryset.values_list("id", flat=True)),
                             actor=f"user:{request.user.get_username()}")
        self.message_user(request, _("%(count)d orders queued again.") % {"count": count})


@admin.register(InvoiceSeries)
class InvoiceSeriesAdmin(admin.ModelAdmin):
    list_display = ["series", "last_number"]
    readonly_fields = ["series", "last_number"]

    def has_add_permission(self, request) -> bool:
        return False
