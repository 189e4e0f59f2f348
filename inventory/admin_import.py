"""Admin for the ERP import: upload a CSV or JSON file as an import job; follow each job's progress and bad lines."""
from django import forms
from django.contrib import admin
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from core.errors import DomainError
from inventory.admin_scope import LocationListFilter, LocationScopedAdmin, default_location_q, staff_locations
from inventory.import_jobs import import_job_create, job_progress
from inventory.models import ImportJob, Location, Product

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
ERRORS_SHOWN = 500


class StockImportForm(forms.Form):
    file = forms.FileField(label=_("CSV or JSON file"))
    reference = forms.CharField(label=_("reference"), required=False, max_length=128,
                                help_text=_("Kept on every ledger row, e.g. the ERP export id."))
    dry_run = forms.BooleanField(label=_("only check, change nothing"), required=False)
    location = forms.ModelChoiceField(label=_("location"), queryset=Location.objects.none(), required=False,
                                      empty_label=_("Default location"), to_field_name="code")

    def __init__(self, *args, locations, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["location"].queryset = locations


def stock_import_view(request):
    """Reached through admin_view (staff only): queues the same import job as the API, then shows it."""
    if not request.user.has_perm("inventory.change_product"):
        return HttpResponseRedirect(reverse("admin:index"))
    form = StockImportForm(request.POST or None, request.FILES or None, locations=staff_locations(request))
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        fmt = "json" if upload.name.lower().endswith(".json") else "csv"
        if upload.size > MAX_UPLOAD_BYTES:
            form.add_error("file", _("The file is larger than 20 MB."))
        else:
            place = form.cleaned_data["location"]
            try:
                # Empty means the default location, which a limited user may not use either.
                job = import_job_create(content=upload.read(), fmt=fmt, reference=form.cleaned_data["reference"],
                                        dry_run=form.cleaned_data["dry_run"], location=place.code if place else None,
                                        actor=f"user:{request.user.get_username()}", client=request.user)
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                return HttpResponseRedirect(reverse("admin:inventory_importjob_change", args=[job.pk]))
    context = {
        **admin.site.each_context(request),
        "title": _("Import stock from the ERP"),
        "opts": Product._meta,
        "form": form,
        "jobs": admin.site.get_model_admin(ImportJob).get_queryset(request).defer("errors")[:10],
    }
    return TemplateResponse(request, "admin/inventory/import_stock.html", context)


@admin.register(ImportJob)
class ImportJobAdmin(LocationScopedAdmin, admin.ModelAdmin):
    """Read-only: jobs are created by uploads, the API and the command; the page refreshes while one runs."""

    list_display = ("id", "status", "phase", "progress_bar", "rows_total", "error_count", "location", "actor",
                    "reference", "created_at", "finished_at")
    list_filter = (LocationListFilter, "status", "dry_run")
    list_select_related = ("location",)
    search_fields = ("reference", "actor")
    fields = ("status", "phase", "progress_bar", "rows_done", "rows_total", "fmt", "location", "reference", "dry_run",
              "actor",
              "attempts", "created_at", "started_at", "finished_at", "result", "failure", "bad_lines")
    readonly_fields = fields
    change_form_template = "admin/inventory/importjob/change_form.html"

    def get_queryset(self, request):
        return super().get_queryset(request).defer("content")

    def rows_at(self, queryset, codes):
        # A job naming no location applied its counts at the default one.
        return queryset.filter(default_location_q(codes))

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("progress"))
    def progress_bar(self, job: ImportJob) -> str:
        percent = round(job_progress(job) * 100)
        return format_html('<progress max="100" value="{}"></progress> {}%', percent, percent)

    @admin.display(description=_("bad lines"))
    def bad_lines(self, job: ImportJob) -> str:
        if not job.errors:
            return "-"
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (e["line"], e["field"], e.get("code", ""), e["message"], e.get("value", ""))
            for e in job.errors[:ERRORS_SHOWN]))
        more = len(job.errors) - ERRORS_SHOWN
        note = format_html("<p>{} more: see the API, GET /api/v1/stock/imports/{}?page=2</p>", more, job.pk) \
            if more > 0 else ""
        return format_html("<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>"
                           "<tbody>{}</tbody></table>{}", _("line"), _("column"), _("code"), _("problem"),
                           _("value"), rows, note)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self.get_object(request, object_id)
        extra = {"refresh": job is not None and not job.finished, **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)
