"""Admin screens for planned movements (filters, search) and read-only projection summaries and demand estimates."""
from django.contrib import admin

from inventory.admin import ProductSearchAdminMixin
from projections.models import DemandEstimate, PlannedMovement, ProjectionSummary
from projections.services import planned_movements_changed


@admin.register(PlannedMovement)
class PlannedMovementAdmin(ProductSearchAdminMixin, admin.ModelAdmin):
    list_display = ("date", "product", "direction", "quantity", "kind", "firmness", "status", "source", "source_ref")
    list_filter = ("status", "direction", "kind", "firmness", "source", "date")
    search_fields = ("product__code", "product__name", "source_ref")
    autocomplete_fields = ("product",)
    date_hierarchy = "date"
    list_select_related = ("product",)

    def save_model(self, request, obj, form, change):
        previous = PlannedMovement.objects.filter(pk=obj.pk).values_list("product_id", flat=True).first() if change else None
        super().save_model(request, obj, form, change)
        planned_movements_changed(product_ids=[obj.product_id, previous])

    def delete_model(self, request, obj):
        product_id = obj.product_id
        super().delete_model(request, obj)
        planned_movements_changed(product_ids=[product_id])

    def delete_queryset(self, request, queryset):
        product_ids = list(queryset.values_list("product_id", flat=True).distinct())
        super().delete_queryset(request, queryset)
        planned_movements_changed(product_ids=product_ids)


@admin.register(ProjectionSummary)
class ProjectionSummaryAdmin(ProductSearchAdminMixin, admin.ModelAdmin):
    list_display = ("product", "start_balance", "min_balance_7d", "stockout_date", "days_of_cover", "computed_at")
    list_filter = ("stockout_date", "as_of")
    search_fields = ("product__code", "product__name")
    list_select_related = ("product",)
    readonly_fields = [f.name for f in ProjectionSummary._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DemandEstimate)
class DemandEstimateAdmin(ProductSearchAdminMixin, admin.ModelAdmin):
    list_display = ("product", "daily_rate", "mae", "basis", "history_days", "censored_days", "as_of", "computed_at")
    list_filter = ("basis", "as_of")
    search_fields = ("product__code", "product__name")
    list_select_related = ("product",)
    readonly_fields = [f.name for f in DemandEstimate._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
