"""Staff screens for API clients: create one (the token is shown once), rotate its token, deactivate it."""
from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from core import services
from core.errors import LocationForbidden, UnknownLocation
from core.models import ALL_SCOPES, ApiClient
from inventory.admin_scope import LocationScopedAdmin
from inventory.selectors import locations_resolve_many

# Every admin page names the product, not the framework ("Administração do Django").
admin.site.site_header = "StockPulse"
admin.site.site_title = "StockPulse"
admin.site.index_title = _("Stock administration")
# The sidebar takes 300 px: without it every column of the product list fits a 1366 px screen.
admin.site.enable_nav_sidebar = False


class ApiClientAdminForm(forms.ModelForm):
    """Location codes must name active locations the signed-in user may give (the rule is the service's,
    core.services.api_client_locations_check: shown here as a form error rather than after saving)."""

    acting_user = None  # set per request by ApiClientAdmin.get_form

    class Meta:
        model = ApiClient
        fields = "__all__"

    def clean_location_codes(self) -> list[str]:
        try:
            places = locations_resolve_many(codes=self.cleaned_data["location_codes"])
            codes = sorted({place.code for place in places})
            services.api_client_locations_check(user=self.acting_user, location_codes=codes,
                                                client=self.instance if self.instance.pk else None)
        except UnknownLocation as error:
            raise forms.ValidationError(f"{error.message} {', '.join(error.details.get('locations', []))}") from error
        except LocationForbidden as error:
            raise forms.ValidationError(error.message) from error
        return codes


@admin.register(ApiClient)
class ApiClientAdmin(LocationScopedAdmin, admin.ModelAdmin):
    """Staff limited to some locations see and manage only clients limited to some of theirs."""

    form = ApiClientAdminForm
    list_display = ["name", "scopes", "location_codes", "active", "token_hint", "created_at"]
    list_filter = ["active"]
    search_fields = ["name"]
    readonly_fields = ["token_hint", "created_at"]
    actions = ["rotate_token"]

    def rows_at(self, queryset, codes):
        # A client limited to none uses every location: not theirs to manage.
        return queryset.exclude(location_codes=[]).filter(location_codes__contained_by=sorted(codes))

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.acting_user = request.user
        form.base_fields["scopes"].help_text = _("A list of scopes among: %(scopes)s") % {
            "scopes": ", ".join(ALL_SCOPES)}
        return form

    def save_model(self, request, obj, form, change):
        if change:
            services.api_client_update(client=obj, name=obj.name, scopes=list(obj.scopes or []),
                                       location_codes=list(obj.location_codes or []), active=obj.active,
                                       user=request.user)
            return
        client, raw = services.api_client_create(name=obj.name, scopes=list(obj.scopes or []),
                                                 location_codes=list(obj.location_codes or []), user=request.user)
        obj.pk = client.pk
        messages.warning(request, _("Token for %(name)s (shown only once): %(token)s") % {"name": client.name,
                                                                                         "token": raw})

    @admin.action(description=_("Rotate token (the new token is shown once)"))
    def rotate_token(self, request, queryset):
        for client in queryset:
            raw = services.api_client_rotate_token(client=client)
            messages.warning(request, _("New token for %(name)s: %(token)s") % {"name": client.name, "token": raw})
