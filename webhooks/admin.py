"""Admin for webhooks: endpoints (saved through the services) and deliveries with a redeliver action."""
from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from core.admin_lists import GrowingListAdminMixin
from core.errors import DomainError
from webhooks.models import EventType, WebhookDelivery, WebhookEndpoint
from webhooks.services import (
    webhook_deliveries_redeliver,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_update,
)


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(assume_scheme="https", max_length=500)
    event_types = forms.MultipleChoiceField(choices=EventType.choices, widget=forms.CheckboxSelectMultiple)
    secret = forms.CharField(required=False, help_text=_("Leave empty to generate one."))

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "event_types", "secret", "active", "batches"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["id", "url", "description", "active", "batches", "created_at"]
    list_filter = ["active", "batches"]

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            if change:
                saved = webhook_endpoint_update(endpoint=obj, url=data["url"], event_types=data["event_types"],
                                                secret=data["secret"] or None, active=data["active"],
                                                description=data["description"], batches=data["batches"])
            else:
                saved = webhook_endpoint_create(url=data["url"], event_types=data["event_types"],
                                                secret=data["secret"], active=data["active"],
                                                description=data["description"], batches=data["batches"])
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        webhook_endpoint_delete(endpoint=obj)

    def delete_queryset(self, request, queryset):
        for endpoint in queryset:
            webhook_endpoint_delete(endpoint=endpoint)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(GrowingListAdminMixin, admin.ModelAdmin):
    list_display = ["id", "event_type", "event_count", "endpoint", "status", "attempts", "last_status_code",
                    "next_attempt_at", "created_at"]
    list_filter = ["status", "event_type"]
    search_fields = ["event_id"]
    actions = ["redeliver"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description=_("Redeliver now"))
    def redeliver(self, request, queryset):
        count = len(webhook_deliveries_redeliver(delivery_ids=list(queryset.values_list("id", flat=True))))
        self.message_user(request, _("%(count)d deliveries queued again.") % {"count": count})
