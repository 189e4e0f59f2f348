"""Admin screens: planned movements, supply terms, reorder suggestions (bulk order), read-only summaries, estimates."""
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _, ngettext

from inventory.admin import ProductSearchAdminMixin
from inventory.selectors import location_default_id
from projections.models import (
    DemandEstimate,
    PlannedMovement,
    ProjectionSummary,
    ReorderState,
    ReorderSuggestion,
    SupplyTerms,
)
from projections.services import planned_movements_changed, reorder_suggestions_order


class ReadOnlyAdminMixin:
    """For read models the code writes: listed and viewed, never added or edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(PlannedMovement)
class PlannedMovementAdmin(ProductSearchAdminMixin, admin.ModelAdmin):
    list_display = ("date", "product", "location", "direction", "quantity", "kind", "firmness", "status", "source",
                    "source_ref")
    list_filter = ("status", "location", "direction", "kind", "firmness", "source", "date")
    search_fields = ("product__code", "product__name", "source_ref")
    autocomplete_fields = ("product",)

    def get_changeform_initial_data(self, request):
        return {"location": location_default_id(), **super().get_changeform_initial_data(request)}
    date_hierarchy = "date"
    list_select_related = ("product",)

    def save_model(self, request, obj, form, change):
        # An edit that moves the movement to another product or location changes the projection it left too.
        previous = (PlannedMovement.objects.filter(pk=obj.pk).values_list("product_id", "location_id").first()
                    if change else None)
        super().save_model(request, obj, form, change)
        planned_movements_changed(pairs=[(obj.product_id, obj.location_id), previous or (None, None)])

    def delete_model(self, request, obj):
        pair = (obj.product_id, obj.location_id)
        super().delete_model(request, obj)
        planned_movements_changed(pairs=[pair])

    def delete_queryset(self, request, queryset):
        pairs = list(queryset.values_list("product_id", "location_id").distinct())
        super().delete_queryset(request, queryset)
        planned_movements_changed(pairs=pairs)


@admin.register(ProjectionSummary)
class ProjectionSummaryAdmin(ReadOnlyAdminMixin, ProductSearchAdminMixin, admin.ModelAdmin):
    list_display = ("product", "location", "start_balance", "min_balance_7d", "stockout_date", "days_of_cover",
                    "computed_at")
    list_filter = ("location", "stockout_date", "as_of")
    search_fields = ("product__code", "product__name")
    list_select_related = ("product", "location")
    readonly_fields = [f.name for f in ProjectionSummary._meta.fields]


@admin.register(DemandEstimate)
class DemandEstimateAdmin(ReadOnlyAdminMixin, ProductSearchAdminMixin, admin.ModelAdmin):
    list_display = ("product", "location", "daily_rate", "mae", "basis", "history_days", "censored_days", "as_of",
                    "computed_at")
    list_filter = ("location", "basis", "as_of")
    search_fields = ("product__code", "product__name")
    list_select_related = ("product", "location")
    readonly_fields = [f.name for f in DemandEstimate._meta.fields]


@admin.register(SupplyTerms)
class SupplyTermsAdmin(ProductSearchAdminMixin, admin.ModelAdmin):
    list_display = ("product", "lead_time_days", "pack_size", "min_order", "max_order", "updated_at")
    search_fields = ("product__code", "product__name")
    autocomplete_fields = ("product",)
    list_select_related = ("product",)


@admin.register(ReorderSuggestion)
class ReorderSuggestionAdmin(ReadOnlyAdminMixin, ProductSearchAdminMixin, admin.ModelAdmin):
    list_display = ("product", "location", "state", "quantity", "demand", "safety_stock", "available", "firm_inbound",
                    "arrival_date", "updated_at")
    list_filter = ("state", "location", "arrival_date")
    search_fields = ("product__code", "product__name")
    list_select_related = ("product", "location")
    readonly_fields = [f.name for f in ReorderSuggestion._meta.fields]
    actions = ["order_selected"]

    def has_order_permission(self, request):
        """Ordering writes purchases: it takes the model's change permission (the rows stay read-only)."""
        return request.user.has_perm("projections.change_reordersuggestion")

    @admin.action(description=_("Order the selected open suggestions"), permissions=["order"])
    def order_selected(self, request, queryset):
        ids = list(queryset.filter(state=ReorderState.OPEN).values_list("pk", flat=True))
        ordered = reorder_suggestions_order(ids=ids, actor=f"user:{request.user.get_username()}")
        self.message_user(request, ngettext("%d suggestion ordered.", "%d suggestions ordered.", len(ordered))
                          % len(ordered), messages.SUCCESS)
