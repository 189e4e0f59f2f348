"""Admin page for the ERP import: upload a CSV or JSON file, see every bad line, or the summary of what was applied."""
from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from core.errors import DomainError
from inventory.importing import ImportInvalid, stock_import
from inventory.models import Product

MAX_UPLOAD_BYTES = 20 * 1024 * 1024


class StockImportForm(forms.Form):
    file = forms.FileField(label=_("CSV or JSON file"))
    reference = forms.CharField(label=_("reference"), required=False, max_length=128,
                                help_text=_("Kept on every ledger row, e.g. the ERP export id."))
    dry_run = forms.BooleanField(label=_("only check, change nothing"), required=False)


def stock_import_view(request):
    """Reached through admin_view (staff only); it calls the same import service as the API and command."""
    if not request.user.has_perm("inventory.change_product"):
        return HttpResponseRedirect(reverse("admin:index"))
    form = StockImportForm(request.POST or None, request.FILES or None)
    errors, result = [], None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        fmt = "json" if upload.name.lower().endswith(".json") else "csv"
        if upload.size > MAX_UPLOAD_BYTES:
            form.add_error("file", _("The file is larger than 20 MB."))
        else:
            try:
                result = stock_import(content=upload.read(), fmt=fmt, reference=form.cleaned_data["reference"],
                                      dry_run=form.cleaned_data["dry_run"],
                                      actor=f"user:{request.user.get_username()}")
            except ImportInvalid as exc:
                errors = exc.errors
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                if not result.dry_run:
                    summary = result.as_dict()
                    messages.success(request, _("Imported %(rows)d rows: %(created)d created, %(counted)d counts "
                                                "changed.") % {"rows": summary["rows"], "created": summary["created"],
                                                               "counted": len(summary["counted"])})
    context = {
        **admin.site.each_context(request),
        "title": _("Import stock from the ERP"),
        "opts": Product._meta,
        "form": form,
        "errors": errors,
        "result": result.as_dict() if result else None,
    }
    return TemplateResponse(request, "admin/inventory/import_stock.html", context)
