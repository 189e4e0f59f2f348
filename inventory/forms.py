"""Admin forms for inventory: the stock adjustment form staff fill in for one product."""
from django import forms
from django.utils.translation import gettext_lazy as _

from inventory.models import MovementKind


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
