"""Inventory tables: Location, Product, UnifiedCode (aliases), Stock (one counter row per product and location),
StockMovement (ledger) and Transfer (units moved between locations)."""
import re
import unicodedata

from django.conf import settings
from django.contrib.postgres.lookups import TrigramWordSimilar
from django.contrib.postgres.search import TrigramWordSimilarity
from django.db import models
from django.db.models import Case, F, FloatField, Func, Lookup, Q, Subquery, Value, When
from django.db.models.functions import Greatest, Length, Lower
from django.utils.translation import gettext_lazy as _

from inventory.codes import CODE_MAX_LENGTH, code_normalise


class Unit(models.TextChoices):
    UNIT = "un", _("unit")
    KILOGRAM = "kg", _("kilogram")
    LITRE = "l", _("litre")
    BOX = "cx", _("box")
    PACK = "pct", _("pack")


class LocationKind(models.TextChoices):
    STORE = "store", _("store")
    DARK_STORE = "dark_store", _("dark store")
    WAREHOUSE = "warehouse", _("warehouse")


class Location(models.Model):
    """A place that holds stock: a store, a dark store or a warehouse. The one whose code is
    ``DEFAULT_LOCATION_CODE`` serves every request that names no location."""

    code = models.CharField(_("code"), max_length=CODE_MAX_LENGTH, unique=True)
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=16, choices=LocationKind.choices, default=LocationKind.STORE)
    address = models.TextField(_("address"), blank=True)
    time_zone = models.CharField(_("time zone"), max_length=64, default=settings.TIME_ZONE)
    active = models.BooleanField(_("active"), default=True)
    # Staff listed here are limited to the locations that list them; staff listed nowhere (and
    # superusers) see every location, so an install with one store needs no setting.
    staff_users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="stock_locations", verbose_name=_("staff users"),
        help_text=_("Staff limited to this location (with any other location that lists them). "
                    "Staff listed at no location, and superusers, see every location."))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("location")
        verbose_name_plural = _("locations")
        ordering = ["code"]
        constraints = [models.CheckConstraint(condition=~Q(code=""), name="location_code_not_empty")]

    def __str__(self) -> str:
        return f"{self.code} · {self.name}"


class LocatedLinesQuerySet(models.QuerySet):
    """For rows whose ``lines`` carry the location (reservations, orders): which rows are at which locations.

    Reads and actions of someone limited to some locations take only rows ``within_locations`` theirs
    (every line there); the admin lists rows ``touching_locations`` theirs (a line there) and refuses
    actions on rows ``touching_elsewhere`` (a line outside them).
    """

    def _lines_at(self, at: Q, *, inside: bool = True) -> models.Exists:
        """A line of the row matches ``at`` (``inside=False``: a line does not)."""
        relation = self.model._meta.get_field("lines")
        lines = relation.related_model.objects.filter(**{relation.field.name: models.OuterRef("pk")})
        return models.Exists(lines.filter(at if inside else ~at))

    def touching_locations(self, codes):
        """Rows with a line at one of ``codes``."""
        return self.filter(self._lines_at(Q(location__code__in=codes)))

    def touching_location_ids(self, location_ids):
        """Rows with a line at one of these locations (by id); every row for None (no limit)."""
        return self if location_ids is None else self.filter(self._lines_at(Q(location_id__in=location_ids)))

    def touching_elsewhere(self, codes):
        """Rows with a line at a location outside ``codes``."""
        return self.filter(self._lines_at(Q(location__code__in=codes), inside=False))

    def within_locations(self, codes):
        """Rows whose every line is at one of ``codes``; every row for None (no limit)."""
        return self if codes is None else self.exclude(self._lines_at(Q(location__code__in=codes), inside=False))


class FUnaccent(Func):
    """``f_unaccent(text)``: unaccent() wrapped as IMMUTABLE (migration 0003), so the trigram index applies."""

    function = "f_unaccent"
    output_field = models.TextField()


def search_key(expression) -> FUnaccent:
    """How names and search terms are compared: lower case, accents removed ("Feijão" → "feijao")."""
    return FUnaccent(Lower(expression))


def search_fold(text: str) -> str:
    """search_key in Python, for comparing a term with a loaded ``search_name``: "Pão " → "pao"."""
    decomposed = unicodedata.normalize("NFKD", text.strip().lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


class InArrayOf(Lookup):
    """``lhs = ANY(ARRAY(subquery))``: unlike ``lhs IN (subquery)``, an index condition, so PostgreSQL can
    OR it with other index scans (a BitmapOr) instead of reading the whole table."""

    lookup_name = "in_array_of"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = compiler.compile(self.rhs)  # a Subquery compiles to "(SELECT ...)"
        return f"{lhs} = ANY(ARRAY{rhs})", (*lhs_params, *rhs_params)


def _words_rank(term: str, search_name: F) -> Case:
    """1 when the name has the term as whole words (a cheap regular expression: most matches), else
    pg_trgm's word similarity (typos, a word that only starts with the term)."""
    whole = r"\m" + re.escape(search_fold(term)) + r"\M"
    return Case(When(Q(**{f"{search_name.name}__regex": whole}), then=Value(1.0)),
                default=TrigramWordSimilarity(search_key(Value(term)), search_name), output_field=FloatField())


def product_search(term: str, *, path: str = "") -> tuple[Q, dict[str, models.Expression]]:
    """(filter, annotations) finding ``term`` in products reached through ``path`` ("" or "product__").

    A product matches when its name holds the term or is close to it word by word (accents and case
    aside, typos included: pg_trgm's word similarity), or part of its code or of one of its unified
    codes (barcodes) is the term; each of these is a trigram index scan. The annotations rank the
    matches: ``search_rank`` is 2 for the exact code or unified code, 1 for part of one or a name with
    the term as whole words, else the name's word similarity; among equals the shorter name
    (``search_length``) is the closer one.
    """
    term = term.strip()
    code = code_normalise(term)
    wanted, search_name = search_key(Value(term)), F(f"{path}search_name")
    aliases = UnifiedCode.objects.values("product_id")
    match = (
        Q(**{f"{path}search_name__contains": wanted}) | Q(TrigramWordSimilar(search_name, wanted))
        | Q(**{f"{path}code__contains": code})
        | Q(InArrayOf(F(f"{path}pk"), Subquery(aliases.filter(code__contains=code))))
    )
    # Uncorrelated IN (...) subqueries: PostgreSQL runs each once and probes a hash per row.
    code_rank = Case(
        When(Q(**{f"{path}code": code}) | Q(**{f"{path}pk__in": aliases.filter(code=code)}), then=Value(2.0)),
        When(Q(**{f"{path}code__contains": code}) | Q(**{f"{path}pk__in": aliases.filter(code__contains=code)}),
             then=Value(1.0)),
        default=Value(0.0),
        output_field=FloatField(),
    )
    return match, {
        "search_rank": Greatest(code_rank, _words_rank(term, search_name), output_field=FloatField()),
        "search_length": Length(f"{path}name"),
    }


SEARCH_ORDER = ["-search_rank", "search_length"]


class ProductQuerySet(models.QuerySet):
    def active(self):
        return self.filter(active=True)

    def search(self, term: str):
        """Products a search box finds for ``term`` (name without accents or with typos, code, unified code),
        best match first."""
        if not term.strip():
            return self
        match, ranks = product_search(term)
        return self.filter(match).annotate(**ranks).order_by(*SEARCH_ORDER, "name", "code")


class Product(models.Model):
    code = models.CharField(_("code"), max_length=CODE_MAX_LENGTH, unique=True)
    name = models.CharField(_("name"), max_length=200)
    category = models.CharField(_("category"), max_length=100, blank=True, db_index=True)
    unit = models.CharField(_("unit"), max_length=8, choices=Unit.choices, default=Unit.UNIT)
    low_stock_threshold = models.PositiveIntegerField(
        _("low-stock threshold"), default=settings.STOCK_DEFAULT_LOW_THRESHOLD
    )
    active = models.BooleanField(_("active"), default=True)
    # The name as searches compare it (search_key): computed and stored by PostgreSQL, trigram-indexed
    # (migration 0003), so a search neither unaccents nor lower-cases a name per row.
    search_name = models.GeneratedField(
        expression=FUnaccent(Lower("name")), output_field=models.TextField(), db_persist=True,
        verbose_name=_("search name"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = ProductQuerySet.as_manager()

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["code"]
        constraints = [models.CheckConstraint(condition=~Q(code=""), name="product_code_not_empty")]

    def __str__(self) -> str:
        return f"{self.code} · {self.name}"


class UnifiedCode(models.Model):
    """An alias: another code whose stock is the product's stock. Never a product code itself, never chained."""

    code = models.CharField(_("code"), max_length=CODE_MAX_LENGTH, unique=True)
    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="unified_codes", verbose_name=_("product")
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("unified code")
        verbose_name_plural = _("unified codes")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} → {self.product.code}"


class StockQuerySet(models.QuerySet):
    def below_threshold(self):
        return self.filter(available__lt=F("product__low_stock_threshold"))

    def out_of_stock(self):
        return self.filter(available__lte=0)


class Stock(models.Model):
    """Counters for one product at one location. Changed only by services, under a row lock; ``version``
    grows by one per change of the row."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="stocks", verbose_name=_("product"))
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="stocks",
                                 verbose_name=_("location"))
    on_hand = models.BigIntegerField(_("on hand"), default=0)
    reserved = models.BigIntegerField(_("reserved"), default=0)
    available = models.GeneratedField(
        expression=F("on_hand") - F("reserved"),
        output_field=models.BigIntegerField(),
        db_persist=True,
        verbose_name=_("available"),
    )
    version = models.BigIntegerField(_("version"), default=0)
    # The ledger rows of this product at this location, kept with each row written (stock_audit checks it):
    # the movements page's count, which counting the rows would plan and open every monthly partition for.
    movement_count = models.BigIntegerField(_("ledger rows"), default=0, db_default=0, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = StockQuerySet.as_manager()

    class Meta:
        verbose_name = _("stock")
        verbose_name_plural = _("stock")
        constraints = [
            models.CheckConstraint(condition=Q(on_hand__gte=0), name="stock_on_hand_not_negative"),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="stock_reserved_not_negative"),
            # Also the index every lookup by product (and location) uses.
            models.UniqueConstraint(fields=["product", "location"], name="stock_one_row_per_product_location"),
        ]
        # No index on the counters (available included): an update that changes no indexed column
        # can stay on its page as a HOT update, with no index entries to add. Storefront rushes update
        # one row hundreds of times a second; the lists that filter on ``available`` scan one row per
        # product either way. The table keeps room on each page for those updates (migration 0002).

    def __str__(self) -> str:
        return f"{self.product_id}@{self.location_id}: {self.on_hand} on hand, {self.reserved} reserved"


class MovementKind(models.TextChoices):
    RECEIPT = "receipt", _("receipt")
    SALE = "sale", _("sale")
    ADJUSTMENT = "adjustment", _("adjustment")
    COUNT = "count", _("count")
    RETURN = "return", _("return")
    TRANSFER_OUT = "transfer_out", _("transfer out")
    TRANSFER_IN = "transfer_in", _("transfer in")


class StockMovement(models.Model):
    """One ledger row. For every product and location the quantities sum to Stock.on_hand (see stock_audit).

    The table is range-partitioned by month on ``created_at`` (migration 0007, docs/ledger-partitioning.md):
    its primary key is (id, created_at) in PostgreSQL, ``id`` alone here, unique through its sequence.
    """

    # No index of its own: the (product, location, -created_at, -id) and (product, created_at) indexes start
    # with it, and every extra index is one more the planner weighs in each monthly partition.
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="movements", verbose_name=_("product"),
                                db_index=False)
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="movements",
                                 verbose_name=_("location"))
    transfer = models.ForeignKey("Transfer", on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="movements", verbose_name=_("transfer"))
    kind = models.CharField(_("kind"), max_length=16, choices=MovementKind.choices)
    quantity = models.BigIntegerField(_("quantity"), help_text=_("Signed change of on-hand units."))
    on_hand_after = models.BigIntegerField(_("on hand after"))
    reason = models.CharField(_("reason"), max_length=255, blank=True)
    reference = models.CharField(_("external reference"), max_length=128, blank=True, db_index=True)
    reservation_id = models.UUIDField(_("reservation"), null=True, blank=True, db_index=True)
    actor = models.CharField(_("actor"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("stock movement")
        verbose_name_plural = _("stock movements")
        ordering = ["-created_at", "-id"]
        # A product's ledger at one location, newest first, and its sum (quantity included, so the
        # audit's sum reads the index alone): one short range per monthly partition. Ordered by time,
        # the partition key, so a page reads the newest months only (selectors.movement_page).
        indexes = [models.Index(fields=["product", "location", "-created_at", "-id"], include=["quantity"],
                                name="movement_place_time_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.quantity:+d} ({self.product_id}@{self.location_id})"


class TransferStatus(models.TextChoices):
    SHIPPED = "shipped", _("in transit")
    RECEIVED = "received", _("received")
    CANCELLED = "cancelled", _("cancelled")


class Transfer(models.Model):
    """Units of one product moved from one location to another. Shipping takes them off the source's
    on hand (a ``transfer_out`` row); receiving puts them on the destination's (``transfer_in``). A
    transfer made received at once writes both in one transaction; one in transit is a planned inbound
    at the destination until it is received (or cancelled, which puts the units back at the source)."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="transfers",
                                verbose_name=_("product"))
    source = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="transfers_out",
                               verbose_name=_("from"))
    destination = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="transfers_in",
                                    verbose_name=_("to"))
    quantity = models.BigIntegerField(_("quantity"))
    status = models.CharField(_("status"), max_length=16, choices=TransferStatus.choices)
    expected_on = models.DateField(_("expected on"), null=True, blank=True)
    reference = models.CharField(_("external reference"), max_length=128, blank=True)
    actor = models.CharField(_("actor"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    received_at = models.DateTimeField(_("received at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("transfer")
        verbose_name_plural = _("transfers")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="transfer_quantity_positive"),
            models.CheckConstraint(condition=~Q(source=F("destination")), name="transfer_between_two_locations"),
        ]
        indexes = [models.Index(fields=["destination", "status"], name="transfer_dest_status_idx")]

    def __str__(self) -> str:
        return f"{self.product_id}: {self.quantity} {self.source_id} → {self.destination_id} ({self.status})"


class ImportStatus(models.TextChoices):
    QUEUED = "queued", _("queued")
    RUNNING = "running", _("running")
    SUCCEEDED = "succeeded", _("succeeded")
    FAILED = "failed", _("failed")


class ImportJob(models.Model):
    """One ERP import: the file, where it is (status, phase, rows done of total) and how it ended.

    Progress columns are written on a connection of their own while the import's transaction is
    open, so they can be read mid-run; the outcome is written in the import's own transaction.
    """

    status = models.CharField(_("status"), max_length=16, choices=ImportStatus.choices, default=ImportStatus.QUEUED)
    phase = models.CharField(_("phase"), max_length=16, default="queued")
    fmt = models.CharField(_("format"), max_length=8)
    content = models.BinaryField(_("file"), default=b"", help_text=_("Emptied when the job ends."))
    reference = models.CharField(_("reference"), max_length=128, blank=True)
    dry_run = models.BooleanField(_("check only"), default=False)
    location = models.ForeignKey(Location, on_delete=models.PROTECT, null=True, blank=True, related_name="imports",
                                 verbose_name=_("location"), help_text=_("Where the counts apply; empty: the default location."))
    actor = models.CharField(_("actor"), max_length=150, blank=True)
    rows_total = models.PositiveIntegerField(_("rows"), default=0)
    rows_done = models.PositiveIntegerField(_("rows done"), default=0)
    errors = models.JSONField(_("bad lines"), default=list, blank=True)
    error_count = models.PositiveIntegerField(_("bad lines"), default=0)
    failure = models.JSONField(_("failure"), null=True, blank=True,
                               help_text=_('{"code", "message", "details"} of a failed job.'))
    result = models.JSONField(_("result"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("stock import")
        verbose_name_plural = _("stock imports")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "updated_at"], name="importjob_status_idx")]

    def __str__(self) -> str:
        return f"import {self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (ImportStatus.SUCCEEDED, ImportStatus.FAILED)
