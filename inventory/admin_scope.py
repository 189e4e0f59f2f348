"""Admin helpers that keep staff limited to some locations (Location.staff_users) to the rows of those locations."""
from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from inventory.models import Location
from inventory.selectors import location_default_id, locations_usable, user_location_codes


def staff_locations(request) -> QuerySet[Location]:
    """The active locations the signed-in staff user may use (every one for unlimited staff), by code."""
    return locations_usable(client=request.user)


class LocationListFilter(admin.SimpleListFilter):
    """The "location" filter of any LocationScopedAdmin list: the choices are the locations the user may use,
    and the rows shown are those its admin's ``rows_at`` gives for the chosen one."""

    title = _("location")
    parameter_name = "location"

    def __init__(self, request, params, model, model_admin):
        # queryset() is not given the ModelAdmin, whose rows_at says what "at a location" means.
        self.model_admin = model_admin
        super().__init__(request, params, model, model_admin)

    def lookups(self, request, model_admin):
        return [(place.code, f"{place.code} · {place.name}") for place in staff_locations(request)]

    def queryset(self, request, queryset):
        if self.value():
            return self.model_admin.rows_at(queryset, frozenset({self.value()}))
        return queryset


class StaffLocationFieldListFilter(admin.RelatedFieldListFilter):
    """A location foreign key's filter (same URL parameters as Django's) offering only the user's locations."""

    def field_choices(self, field, request, model_admin):
        allowed = user_location_codes(request.user)
        if allowed is None:
            return super().field_choices(field, request, model_admin)
        return field.get_choices(include_blank=False, ordering=("code",), limit_choices_to={"code__in": allowed})


class LocationScopedAdmin:
    """Mixin for ModelAdmins of rows that belong to locations. Staff listed at some locations see (and so
    open or act on) only the rows ``rows_at`` gives for those; other staff and superusers see all.

    A row another location also shares (a transfer from elsewhere, a cart with lines at two stores) is
    shown, but ``rows_acted_on`` leaves it out of actions unless every location it touches is theirs.
    """

    def rows_at(self, queryset: QuerySet, codes: frozenset[str]) -> QuerySet:
        """The rows of ``queryset`` that belong to (any of) these location codes."""
        raise NotImplementedError

    def rows_elsewhere(self, queryset: QuerySet, codes: frozenset[str]) -> QuerySet:
        """The rows of ``queryset`` that also touch a location outside ``codes``."""
        return queryset.none()

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        allowed = user_location_codes(request.user)
        return queryset if allowed is None else self.rows_at(queryset, allowed)

    def rows_acted_on(self, request, queryset: QuerySet) -> QuerySet:
        """The selected rows the user may act on; the others are named in an error message."""
        allowed = user_location_codes(request.user)
        if allowed is None:
            return queryset
        refused = list(self.rows_elsewhere(queryset, allowed).values_list("pk", flat=True))
        if refused:
            self.message_user(request, _("Refused for %(ids)s: they also belong to locations you may not use.")
                              % {"ids": ", ".join(str(pk) for pk in refused)}, level=messages.ERROR)
        return queryset.exclude(pk__in=refused)


def default_location_q(codes: frozenset[str], *, path: str = "location") -> Q:
    """Rows at these codes, counting rows with no location as at the default one (import jobs)."""
    q = Q(**{f"{path}__code__in": codes})
    default_code = Location.objects.filter(pk=location_default_id()).values_list("code", flat=True).first()
    return q | Q(**{f"{path}__isnull": True}) if default_code in codes else q
