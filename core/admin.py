"""Staff screens for API clients: create one (the token is shown once), rotate its token, deactivate it."""
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from core import services
from core.models import ALL_SCOPES, ApiClient

# Every admin page names the product, not the framework ("Administração do Django").
admin.site.site_header = "StockPulse"
admin.site.site_title = "StockPulse"
admin.site.index_title = _("Stock administration")
# The sidebar takes 300 px: without it every column of the product list fits a 1366 px screen.
admin.site.enable_nav_sidebar = False


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ["name", "scopes", "active", "token_hint", "created_at"]
    list_filter = ["active"]
    search_fields = ["name"]
    readonly_fields = ["token_hint", "created_at"]
    actions = ["rotate_token"]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.base_fields["scopes"].help_text = _("A list of scopes among: %(scopes)s") % {
            "scopes": ", ".join(ALL_SCOPES)}
        return form

    def save_model(self, request, obj, form, change):
        if change:
            obj.save()
            return
        client, raw = services.api_client_create(name=obj.name, scopes=list(obj.scopes or []))
        obj.pk = client.pk
        messages.warning(request, _("Token for %(name)s (shown only once): %(token)s") % {"name": client.name,
                                                                                         "token": raw})

    @admin.action(description=_("Rotate token (the new token is shown once)"))
    def rotate_token(self, request, queryset):
        for client in queryset:
            raw = services.api_client_rotate_token(client=client)
            messages.warning(request, _("New token for %(name)s: %(token)s") % {"name": client.name, "token": raw})
