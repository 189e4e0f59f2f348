"""Admin forms for inventory: new codes checked as the services check them, and the stock adjustment form."""
from django import forms
from django.utils.translation import gettext_lazy as _

from core.errors import DomainError
from inventory.models import Location, MovementKind, Product, UnifiedCode
from inventory.services import code_check_free


def _free_code(form: forms.ModelForm) -> str:
    """A new object's code, checked by the same rule the service applies on save, so a taken or malformed
    code is shown beside the field with what was typed kept; an existing object's code never changes."""
    if form.instance.pk:
        return form.instance.code
    try:
        return code_check_free(code=form.cleaned_data["code"])
    except DomainError as error:
        raise forms.ValidationError(error.message) from error


class ProductAdminForm(forms.ModelForm):
    class Meta:
        model = Product
        fields = "__all__"

    def clean_code(self) -> str:
        return _free_code(self)


class UnifiedCodeAdminForm(forms.ModelForm):
    class Meta:
        model = UnifiedCode
        fields = "__all__"

    def clean_code(self) -> str:
        return _free_code(self)


class StockAdjustForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("Kind"),
        choices=[
            (MovementKind.RECEIPT, _("Receipt (units in)")),
            (MovementKind.ADJUSTMENT, _("Adjustment (signed change)")),
            (MovementKind.COUNT, _("Physical count (sets on hand)")),
            (MovementKind.RETURN, _("Return (units back)")),
        ],
    )
    quantity = forms.IntegerField(label=_("Quantity"))
    reason = forms.CharField(label=_("Reason"), max_length=255)
    reference = forms.CharField(label=_("External reference"), max_length=128, required=False)
    location = forms.ModelChoiceField(label=_("Location"), queryset=Location.objects.none(), required=False,
                                      empty_label=_("Default location"), to_field_name="code")

    def __init__(self, *args, locations, **kwargs):
        super().__init__(*args, **kwargs)
        # Only the locations the staff user may use (all of them for unlimited staff).
        self.fields["location"].queryset = locations


class TransferAdminForm(forms.Form):
    """The admin's transfer: two locations among the user's; the products are TransferLineFormSet's lines."""

    source = forms.ModelChoiceField(label=_("From"), queryset=Location.objects.none(), to_field_name="code")
    destination = forms.ModelChoiceField(label=_("To"), queryset=Location.objects.none(), to_field_name="code")
    in_transit = forms.BooleanField(label=_("In transit (received later)"), required=False,
                                    help_text=_("Unticked: the units are received at the destination at once."))
    expected_on = forms.DateField(label=_("Expected on"), required=False,
                                  widget=forms.DateInput(attrs={"type": "date"}))
    reference = forms.CharField(label=_("External reference"), max_length=128, required=False)

    def __init__(self, *args, locations, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["source"].queryset = locations
        self.fields["destination"].queryset = locations

    def clean(self):
        data = super().clean()
        if data.get("source") and data.get("source") == data.get("destination"):
            self.add_error("destination", _("A transfer goes between two different locations."))
        return data


class TransferLineForm(forms.Form):
    code = forms.CharField(label=_("Product code"), max_length=64)
    quantity = forms.IntegerField(label=_("Quantity"), min_value=1)


# A few lines per transfer; blank lines are skipped, and at least one is needed.
TransferLineFormSet = forms.formset_factory(TransferLineForm, extra=5, max_num=20, min_num=1, validate_min=True,
                                            validate_max=True)
