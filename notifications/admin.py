"""Admin for notifications: Telegram recipients, drivers and buyers (with their one-time link and locations),
substitutes, alert states and the outbox (filtered by location)."""
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from core.admin_lists import GrowingListAdminMixin
from inventory.admin import ProductSearchAdminMixin
from notifications import services
from notifications.forms import DriverAdminForm
from notifications.models import AlertOutbox, AlertState, Driver, DriverMute, Substitute


@admin.register(Driver)
class DriverAdmin(admin.ModelAdmin):
    list_display = ("name", "role", "chat_id", "active", "language", "subscription", "location_codes", "unreachable",
                    "linked_at")
    list_filter = ("role", "active", "unreachable", "language", "subscription", "locations")
    search_fields = ("name",)
    form = DriverAdminForm
    autocomplete_fields = ("products",)
    filter_horizontal = ("locations",)
    readonly_fields = ("unreachable_reason", "linked_at", "created_at")
    actions = ["link_create", "unreachable_clear"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("locations")

    @admin.display(description=_("locations"))
    def location_codes(self, obj: Driver) -> str:
        # No location means the default location's alerts.
        return ", ".join(sorted(place.code for place in obj.locations.all())) or "—"

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            link = services.driver_link_create(driver=obj)
            messages.success(request, _("Send this one-time link to %(name)s: %(link)s") % {"name": obj.name,
                                                                                             "link": link})

    @admin.action(description=_("Create a new one-time Telegram link"))
    def link_create(self, request, queryset):
        for driver in queryset:
            link = services.driver_link_create(driver=driver)
            messages.success(request, f"{driver.name}: {link}")

    @admin.action(description=_("Mark reachable again"))
    def unreachable_clear(self, request, queryset):
        queryset.update(unreachable=False, unreachable_reason="")


@admin.register(Substitute)
class SubstituteAdmin(ProductSearchAdminMixin, admin.ModelAdmin):
    list_display = ("product", "substitute", "position")
    autocomplete_fields = ("product", "substitute")
    search_fields = ("product__code", "product__name", "substitute__code")


@admin.register(AlertState)
class AlertStateAdmin(ProductSearchAdminMixin, admin.ModelAdmin):
    list_display = ("product", "location", "level", "episode", "projected_stockout", "changed_at")
    list_filter = ("level", "location")
    list_select_related = ("product", "location")
    search_fields = ("product__code", "product__name")
    readonly_fields = [f.name for f in AlertState._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(AlertOutbox)
class AlertOutboxAdmin(GrowingListAdminMixin, ProductSearchAdminMixin, admin.ModelAdmin):
    list_display = ("id", "product", "location", "driver", "kind", "level", "digest_date", "state", "attempts",
                    "last_error", "next_attempt_at", "created_at", "sent_at")
    list_filter = ("state", "kind", "level", "location")
    search_fields = ("product__code", "product__name", "driver__name")
    readonly_fields = [f.name for f in AlertOutbox._meta.fields]
    list_select_related = ("product", "location", "driver")
    actions = ["resend"]

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("Send again"))
    def resend(self, request, queryset):
        count = services.outbox_resend(ids=list(queryset.values_list("pk", flat=True)))
        messages.success(request, _("%(count)d alerts queued again.") % {"count": count})


@admin.register(DriverMute)
class DriverMuteAdmin(admin.ModelAdmin):
    list_display = ("driver", "product", "until")
    autocomplete_fields = ("driver", "product")
