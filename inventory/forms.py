"""Admin forms for inventory: new codes checked as the services check them, and the stock adjustment form."""
from django import forms
from django.utils.translation import gettext_lazy as _

from core.errors import DomainError
from inventory.models import MovementKind, Product, UnifiedCode
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
