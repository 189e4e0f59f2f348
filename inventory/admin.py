"""Staff screens for inventory: products with aliases and an adjust-stock form, unified codes, the ledger."""
from datetime import datetime
from uuid import UUID

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import F, FilteredRelation, Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime
from django.utils.translation import gettext_lazy as _

from core.admin_lists import GrowingListAdminMixin
from core.errors import DomainError, InsufficientStock, UnknownCode
from inventory import services
from inventory.admin_import import stock_import_view
from inventory.admin_scope import LocationListFilter, LocationScopedAdmin, StaffLocationFieldListFilter, staff_locations
from inventory.forms import (
    ProductAdminForm,
    StockAdjustForm,
    TransferAdminForm,
    TransferLineFormSet,
    UnifiedCodeAdminForm,
)
from inventory.models import Location, Product, Stock, StockMovement, Transfer, TransferStatus, UnifiedCode
from inventory.partitions import month_add, month_start_utc
from inventory.selectors import (
    ledger_months,
    location_default,
    location_default_id,
    product_resolve,
    stock_at,
    stocks_of_product,
    user_location_codes,
)
from projections.selectors import projection_row

# Ledger rows shown on a product's page; the full ledger is one click away.
RECENT_MOVEMENTS = 10


class StockLevelFilter(admin.SimpleListFilter):
    title = _("stock level")
    parameter_name = "level"

    def lookups(self, request, model_admin):
        return [("below", _("Below threshold")), ("out", _("Out of stock"))]

    def queryset(self, request, queryset):
        if self.value() == "below":
            return queryset.filter(here__available__lt=F("low_stock_threshold"))
        if self.value() == "out":
            return queryset.filter(here__available__lte=0)
        return queryset


class ProductLocationFilter(LocationListFilter):
    """Which location's counters the product list shows (ProductAdmin.counters_location reads the choice):
    the location choices of the other lists, but every product stays listed."""

    title = _("counters at location")

    def queryset(self, request, queryset):
        return queryset


class UnifiedCodeInline(admin.TabularInline):
    model = UnifiedCode
    form = UnifiedCodeAdminForm
    extra = 1
    fields = ["code", "note"]


class ProductSearchAdminMixin:
    """For screens of rows that belong to a product: the search box also finds the rows whose product the
    product search finds (names without accents or with typos, codes, unified codes)."""

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if search_term.strip():
            results |= queryset.filter(product__in=Product.objects.search(search_term).values("pk"))
        return results, may_have_duplicates


class ProductChangeList(ChangeList):
    """While searching, the ranking is the order (a column header the user clicks still comes first)."""

    def _get_default_ordering(self):
        return [] if self.query.strip() else super()._get_default_ordering()


class StockAtLocationInline(LocationScopedAdmin, admin.TabularInline):
    """A product's counters at every location that has a row for it (changed only through movements)."""

    model = Stock
    fields = ["location", "on_hand", "reserved", "available", "version", "updated_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = _("stock per location")

    def has_add_permission(self, request, obj=None):
        return False

    def rows_at(self, queryset, codes):
        return queryset.filter(location__code__in=codes)


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    form = ProductAdminForm
    list_display = ["code", "name", "category", "on_hand", "reserved", "available", "level",
                    "low_stock_threshold", "active"]
    list_filter = [ProductLocationFilter, "category", StockLevelFilter, "active"]
    # The search box goes through Product.objects.search (get_search_results): names without accents or
    # with typos, part of a code or unified code, best match first.
    search_fields = ["code", "name", "unified_codes__code"]
    readonly_fields = ["stock_counters", "projection_panel", "recent_movements", "created_at", "updated_at"]
    inlines = [UnifiedCodeInline, StockAtLocationInline]

    def get_inlines(self, request, obj):
        # A new product has no stock rows yet: its add form shows only the unified codes.
        return self.inlines if obj is not None else [UnifiedCodeInline]
    actions = ["adjust_stock_action"]

    def counters_location(self, request) -> Location | None:
        """The location whose counters the list shows: the one chosen in the filter, else the default one,
        else (staff limited to other locations) the first of theirs; None for staff limited to none active."""
        places = {place.code: place for place in staff_locations(request)}
        chosen = places.get(request.GET.get(ProductLocationFilter.parameter_name, ""))
        default = next((place for place in places.values() if place.pk == location_default_id()), None)
        return chosen or default or next(iter(places.values()), None)

    def get_queryset(self, request):
        # One location's counters per row (per-location rows are on the product's page).
        place = self.counters_location(request)
        here = FilteredRelation("stocks", condition=Q(stocks__location_id=place.pk if place else None))
        return super().get_queryset(request).alias(here=here).annotate(
            here_on_hand=F("here__on_hand"), here_reserved=F("here__reserved"), here_available=F("here__available"))

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return queryset.search(search_term), False

    def get_changelist(self, request, **kwargs):
        return ProductChangeList
    class Media:
        css = {"all": ["stockpulse/admin.css"]}

    def get_readonly_fields(self, request, obj=None):
        fields = self.readonly_fields
        if user_location_codes(request.user) is not None:
            # These panels show the default location (and the whole ledger): staff limited to some
            # locations read their rows in the stock-per-location table and the ledger list instead.
            fields = [f for f in fields if f not in ("stock_counters", "projection_panel", "recent_movements")]
        # The code never changes once created: aliases cover renames, and the ledger refers to it.
        return [*fields, "code"] if obj else fields

    @admin.display(description=_("on hand"), ordering="here_on_hand")
    def on_hand(self, obj):
        return obj.here_on_hand or 0

    @admin.display(description=_("reserved"), ordering="here_reserved")
    def reserved(self, obj):
        return obj.here_reserved or 0

    @admin.display(description=_("available"), ordering="here_available")
    def available(self, obj):
        return obj.here_available or 0

    @admin.display(description=_("level"))
    def level(self, obj):
        available = obj.here_available or 0
        if available <= 0:
            css, label = "out", _("Out of stock")
        elif available < obj.low_stock_threshold:
            css, label = "low", _("Low stock")
        else:
            css, label = "ok", _("OK")
        # The class also colours the whole row (static/admin/stockpulse.css).
        return format_html('<span class="stock-level stock-level--{}">{}</span>', css, label)

    @admin.display(description=_("projection"))
    def projection_panel(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        row = projection_row(code=obj.code)
        if not row.computed:
            return _("Not computed yet.")
        stockout = date_format(row.stockout_date, "SHORT_DATE_FORMAT") if row.stockout_date else _("none in the horizon")
        return format_html(
            "{}: <strong>{}</strong> ({}) · {}: <strong>{}</strong> · {}: {}",
            _("lowest balance in 7 days"), row.min_balance_7d,
            date_format(row.min_balance_7d_date, "SHORT_DATE_FORMAT") if row.min_balance_7d_date else "-",
            _("stockout day"), stockout, _("computed at"), date_format(localtime(row.computed_at), "SHORT_DATETIME_FORMAT"),
        )

    @admin.display(description=_("last movements"))
    def recent_movements(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        movements = StockMovement.objects.filter(product=obj).order_by("-created_at", "-id")[:RECENT_MOVEMENTS]
        if not movements:
            return _("No movement yet.")
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (date_format(localtime(m.created_at), "SHORT_DATETIME_FORMAT"), m.get_kind_display(), f"{m.quantity:+d}",
             m.on_hand_after, m.reason, m.actor) for m in movements))
        ledger = reverse("admin:inventory_stockmovement_changelist") + f"?product__id__exact={obj.pk}"
        return format_html(
            '<table class="recent-movements"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>'
            "<th>{}</th></tr></thead><tbody>{}</tbody></table><p><a href=\"{}\">{}</a></p>",
            _("created at"), _("kind"), _("quantity"), _("on hand after"), _("reason"), _("actor"), rows, ledger,
            _("Whole ledger of this product"),
        )

    @admin.display(description=_("stock"))
    def stock_counters(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        stock = stock_at(product=obj, location=location_default())
        url = reverse("admin:inventory_product_adjust", args=[obj.pk])
        return format_html(
            "{} {} · {} {} · {} {} · v{} &nbsp; <a class='button' href='{}'>{}</a>",
            stock.on_hand, _("on hand"), stock.reserved, _("reserved"), stock.on_hand - stock.reserved,
            _("available"), stock.version, url, _("Adjust stock"),
        )

    def save_model(self, request, obj, form, change):
        # Writes go through the services so the stock row, code rules and normalisation always apply.
        if change:
            services.product_update(
                product=obj, name=obj.name, category=obj.category, unit=obj.unit,
                low_stock_threshold=obj.low_stock_threshold, active=obj.active,
            )
        else:
            created = services.product_create(
                code=obj.code, name=obj.name, category=obj.category, unit=obj.unit,
                low_stock_threshold=obj.low_stock_threshold, active=obj.active,
            )
            obj.pk = created.pk
            obj.code = created.code

    def save_formset(self, request, form, formset, change):
        # The admin's change message reads these lists, which formset.save() would normally fill.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for deleted_form in formset.deleted_forms:
            if deleted_form.instance.pk:
                formset.deleted_objects.append(deleted_form.instance)
                services.unified_code_delete(unified_code=deleted_form.instance)
        for inline_form in formset.forms:
            if not inline_form.has_changed() or inline_form in formset.deleted_forms:
                continue
            instance = inline_form.instance
            if instance.pk:
                instance.note = inline_form.cleaned_data.get("note", "")
                instance.save(update_fields=["note"])
                formset.changed_objects.append((instance, ["note"]))
            else:
                formset.new_objects.append(services.unified_code_create(
                    code=inline_form.cleaned_data["code"], product=form.instance,
                    note=inline_form.cleaned_data.get("note", "")))

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as error:
            self.message_user(request, error.message, level=messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def get_urls(self):
        custom = [
            path("<int:product_id>/adjust/", self.admin_site.admin_view(self.adjust_view),
                 name="inventory_product_adjust"),
            path("import/", self.admin_site.admin_view(stock_import_view), name="inventory_product_import"),
        ]
        return custom + super().get_urls()

    def adjust_view(self, request, product_id: int):
        """Staff adjust stock through the same services as the API, so the ledger and events follow."""
        product = get_object_or_404(Product, pk=product_id)
        if not self.has_change_permission(request, product):
            return HttpResponseRedirect(reverse("admin:index"))
        form = StockAdjustForm(request.POST or None, locations=staff_locations(request))
        if request.method == "POST" and form.is_valid():
            values = dict(form.cleaned_data)
            place = values.pop("location")
            try:
                # Empty means the default location, which a limited user may not use either.
                services.stock_record_movement(code=product.code, actor=f"user:{request.user.get_username()}",
                                               location=place.code if place else None, client=request.user,
                                               **values)
            except DomainError as error:
                form.add_error(None, error.message)
            else:
                self.message_user(request, _("Stock of %(code)s updated.") % {"code": product.code})
                return HttpResponseRedirect(reverse("admin:inventory_product_change", args=[product.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Adjust stock of %(code)s") % {"code": product.code},
            "product": product,
            "stocks": stocks_of_product(product=product, locations=staff_locations(request)),
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/inventory/product/adjust.html", context)

    @admin.action(description=_("Adjust stock of the selected product"))
    def adjust_stock_action(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, _("Select exactly one product to adjust."), level=messages.WARNING)
            return None
        return HttpResponseRedirect(reverse("admin:inventory_product_adjust", args=[queryset.get().pk]))


@admin.register(UnifiedCode)
class UnifiedCodeAdmin(ProductSearchAdminMixin, admin.ModelAdmin):
    form = UnifiedCodeAdminForm
    list_display = ["code", "product", "note", "created_at"]
    search_fields = ["code", "product__code", "product__name"]
    autocomplete_fields = ["product"]

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["note"])
        else:
            created = services.unified_code_create(code=obj.code, product=obj.product, note=obj.note)
            obj.pk = created.pk

    def get_readonly_fields(self, request, obj=None):
        return ["code", "product"] if obj else []


class LedgerMonthFilter(admin.SimpleListFilter):
    """One choice per month the ledger holds (its monthly partitions, read from the catalogue, newest first):
    a chosen month reads that month's partition only."""

    title = _("month")
    parameter_name = "month"

    def lookups(self, request, model_admin):
        return [(month.strftime("%Y-%m"), date_format(month, "YEAR_MONTH_FORMAT"))
                for month in reversed(ledger_months())]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            month = datetime.strptime(self.value(), "%Y-%m").date()
        except ValueError:
            raise IncorrectLookupParameters(self.value()) from None
        # The partition's own bounds, so PostgreSQL reads that one partition.
        return queryset.filter(created_at__gte=month_start_utc(month),
                               created_at__lt=month_start_utc(month_add(month, 1)))


@admin.register(StockMovement)
class StockMovementAdmin(GrowingListAdminMixin, LocationScopedAdmin, admin.ModelAdmin):
    """The ledger is append-only: staff read and filter it, never edit it.

    Built for a ledger of tens of millions of rows: every filter and search uses an index or prunes months,
    the count stops at CappedCountPaginator.cap (GrowingListAdminMixin), and free text in reason or actor is not
    searched: it would read every row."""

    list_display = ["created_at", "product", "location", "kind", "quantity", "on_hand_after", "reason", "reference",
                    "actor"]
    list_filter = [("location", StaffLocationFieldListFilter), "kind", LedgerMonthFilter, "created_at",
                   "product__category"]
    list_select_related = ["product", "location"]
    search_fields = ["product__code"]  # shows the search box; get_search_results says what a term matches
    search_help_text = _("A product code or unified code, a reservation id, or an external reference (exact).")

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        matches = Q(reference=term)
        try:
            matches |= Q(product=product_resolve(code=term))
        except UnknownCode:
            pass
        try:
            matches |= Q(reservation_id=UUID(term))
        except ValueError:
            pass
        return queryset.filter(matches), False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def rows_at(self, queryset, codes):
        return queryset.filter(location__code__in=codes)


@admin.register(Location)
class LocationAdmin(LocationScopedAdmin, admin.ModelAdmin):
    """Stores, dark stores and warehouses. A code never changes once created, and the default location
    cannot be deleted (nor can any location that holds stock or ledger rows)."""

    list_display = ["code", "name", "kind", "time_zone", "active"]
    list_filter = ["kind", "active"]
    search_fields = ["code", "name", "address"]
    filter_horizontal = ["staff_users"]

    def rows_at(self, queryset, codes):
        return queryset.filter(code__in=codes)

    def get_readonly_fields(self, request, obj=None):
        fields = ["code", "created_at", "updated_at"] if obj else []
        # Limited staff may not change who is limited: leaving every list would lift their own limit.
        return [*fields, "staff_users"] if user_location_codes(request.user) is not None else fields

    def has_add_permission(self, request):
        # A location a limited user created would not be theirs; unlimited staff create them.
        return user_location_codes(request.user) is None and super().has_add_permission(request)

    def save_model(self, request, obj, form, change):
        if change:
            obj.save()
        else:
            created = services.location_create(code=obj.code, name=obj.name, kind=obj.kind, address=obj.address,
                                               time_zone=obj.time_zone, active=obj.active)
            obj.pk = created.pk

    def has_delete_permission(self, request, obj=None):
        if user_location_codes(request.user) is not None:
            return False
        return obj is None or obj.pk != location_default_id()


@admin.register(Transfer)
class TransferAdmin(LocationScopedAdmin, admin.ModelAdmin):
    """Staff follow transfers, make new ones with the add form (several products between two locations),
    and receive or cancel the ones in transit, through the same services as the API. Staff limited to
    some locations see the transfers from or to them, and act only on those between two of theirs."""

    list_display = ["created_at", "product", "source", "destination", "quantity", "status", "expected_on",
                    "received_at", "reference"]
    list_filter = [LocationListFilter, "status", ("source", StaffLocationFieldListFilter),
                   ("destination", StaffLocationFieldListFilter), "created_at"]
    search_fields = ["product__code", "product__name", "reference"]
    list_select_related = ["product", "source", "destination"]
    actions = ["receive_action", "cancel_action"]

    def rows_at(self, queryset, codes):
        return queryset.filter(Q(source__code__in=codes) | Q(destination__code__in=codes))

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def add_view(self, request, form_url="", extra_context=None):
        """The transfer form: source, destination, a few product lines, in transit or received at once."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        places = staff_locations(request)
        form = TransferAdminForm(request.POST or None, locations=places)
        lines = TransferLineFormSet(request.POST or None, prefix="lines")
        if request.method == "POST" and form.is_valid() and lines.is_valid():
            values = form.cleaned_data
            try:
                transfers = services.transfers_create(
                    lines=[(line["code"], line["quantity"]) for line in lines.cleaned_data if line],
                    source=values["source"].code, destination=values["destination"].code,
                    in_transit=values["in_transit"], expected_on=values["expected_on"],
                    reference=values["reference"], actor=f"user:{request.user.get_username()}", client=request.user)
            except DomainError as error:
                form.add_error(None, transfer_error_text(error))
            else:
                self.message_user(request, _("%(count)d transfers made.") % {"count": len(transfers)})
                return HttpResponseRedirect(reverse("admin:inventory_transfer_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Add transfer"),
            "form": form,
            "lines": lines,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/inventory/transfer/add_form.html", context)

    def _each(self, request, queryset, service, done_message):
        done = 0
        for transfer in queryset.filter(status=TransferStatus.SHIPPED):
            try:
                # The service refuses a transfer touching a location the user may not use.
                service(transfer_id=transfer.pk, actor=f"user:{request.user.get_username()}", client=request.user)
                done += 1
            except DomainError as error:
                self.message_user(request, f"{transfer.pk}: {error.message}", level=messages.ERROR)
        self.message_user(request, done_message % {"count": done})

    @admin.action(description=_("Receive the selected transfers in transit"))
    def receive_action(self, request, queryset):
        self._each(request, queryset, services.transfer_receive, _("%(count)d transfers received."))

    @admin.action(description=_("Cancel the selected transfers in transit"))
    def cancel_action(self, request, queryset):
        self._each(request, queryset, services.transfer_cancel, _("%(count)d transfers cancelled."))


def transfer_error_text(error: DomainError) -> str:
    """A domain error as one form error: the message, and the short lines or unknown codes it names."""
    if isinstance(error, InsufficientStock):
        shorts = "; ".join(_("%(code)s: %(available)d of %(requested)d available") % line for line in error.lines)
        return f"{error.message} {shorts}"
    codes = error.details.get("codes")
    return f"{error.message} {', '.join(codes)}" if codes else str(error.message)
