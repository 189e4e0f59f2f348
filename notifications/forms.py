"""Admin forms for notifications: a driver's categories picked from the catalogue's, not typed as JSON."""
from django import forms
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.utils.translation import gettext_lazy as _

from inventory.selectors import categories_list
from notifications.models import Driver


class DriverAdminForm(forms.ModelForm):
    categories = forms.MultipleChoiceField(
        label=_("categories"), required=False, widget=FilteredSelectMultiple(_("categories"), is_stacked=False),
        help_text=_("With the subscription “categories”: alerts and reorder suggestions for the products of these "
                    "categories."),
    )

    class Meta:
        model = Driver
        fields = "__all__"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A category no product has any more stays selectable while a driver still follows it.
        names = sorted(set(categories_list()) | set(self.instance.categories or []))
        self.fields["categories"].choices = [(name, name) for name in names]
