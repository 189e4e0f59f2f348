"""Staff screens for reservations: list with status filters, lines inline, and a release action."""
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.admin_lists import GrowingListAdminMixin
from core.errors import DomainError
from inventory.admin_scope import LocationListFilter, LocationScopedAdmin
from reservations import services
from reservations.models import Reservation, ReservationLine, ReservationStatus
from reservations.selectors import reservation_effective_status


class ReservationLineInline(admin.TabularInline):
    model = ReservationLine
    extra = 0
    fields = ["product", "location", "quantity"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class DueFilter(admin.SimpleListFilter):
    title = _("effective status")
    parameter_name = "effective"

    def lookups(self, request, model_admin):
        return [("due", _("Past expiry, not swept yet"))]

    def queryset(self, request, queryset):
        if self.value() == "due":
            return queryset.due(now=timezone.now())
        return queryset


@admin.register(Reservation)
class ReservationAdmin(GrowingListAdminMixin, LocationScopedAdmin, admin.ModelAdmin):
    """Staff limited to some locations see the reservations with a line at one of them, and release only
    those whose every line is at theirs."""

    list_display = ["id", "client", "status", "effective_status", "expires_at", "reference", "created_at"]
    list_filter = [LocationListFilter, "status", DueFilter, "client", "created_at"]
    search_fields = ["id", "reference", "idempotency_key", "lines__product__code"]
    inlines = [ReservationLineInline]
    actions = ["release_selected"]
    list_select_related = ["client"]
    # Counters move only through services: staff can look and release, never edit fields.
    readonly_fields = ["id", "client", "status", "expires_at", "reference", "idempotency_key", "created_at",
                       "updated_at", "closed_at"]
    fields = readonly_fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def rows_at(self, queryset, codes):
        return queryset.touching_locations(codes)

    def rows_elsewhere(self, queryset, codes):
        return queryset.touching_elsewhere(codes)

    @admin.display(description=_("effective status"))
    def effective_status(self, obj: Reservation) -> str:
        return reservation_effective_status(obj)

    @admin.action(description=_("Release selected reservations (units go back on sale)"))
    def release_selected(self, request, queryset):
        released, failed = 0, 0
        queryset = self.rows_acted_on(request, queryset)
        for reservation_id in list(queryset.filter(status=ReservationStatus.ACTIVE).values_list("pk", flat=True)):
            try:
                services.reservation_release(reservation_id=reservation_id, client=None,
                                             actor=f"user:{request.user.get_username()}")
                released += 1
            except DomainError as exc:
                failed += 1
                self.message_user(request, f"{reservation_id}: {exc.message}", messages.ERROR)
        self.message_user(request, _("%(n)d reservation(s) released.") % {"n": released},
                          messages.SUCCESS if not failed else messages.WARNING)
