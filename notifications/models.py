"""Notification tables: Telegram recipients (drivers and buyers) and their locations, alert states per product and
location, the alert outbox, bot bookkeeping."""
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from inventory.models import Location, Product


class Language(models.TextChoices):
    PT_BR = "pt-br", "Português (Brasil)"
    EN = "en", "English"


class Subscription(models.TextChoices):
    ALL = "all", _("everything")
    CATEGORIES = "categories", _("categories")
    PRODUCTS = "products", _("chosen products")


class Role(models.TextChoices):
    """What a Telegram recipient gets: drivers the stock alerts, buyers the daily reorder digest."""

    DRIVER = "driver", _("driver")
    BUYER = "buyer", _("buyer")
    BOTH = "both", _("driver and buyer")


DRIVER_ROLES = (Role.DRIVER, Role.BOTH)
BUYER_ROLES = (Role.BUYER, Role.BOTH)


class DriverQuerySet(models.QuerySet):
    def reachable(self) -> "DriverQuerySet":
        """Active, linked to a chat, and not refused by Telegram."""
        return self.filter(active=True, unreachable=False, chat_id__isnull=False)

    def drivers(self) -> "DriverQuerySet":
        """Recipients of stock alerts (projected stockouts included)."""
        return self.filter(role__in=DRIVER_ROLES)

    def buyers(self) -> "DriverQuerySet":
        """Recipients of the daily reorder digest."""
        return self.filter(role__in=BUYER_ROLES)

    def at_location(self, location_id: int, *, default: bool) -> "DriverQuerySet":
        """Recipients of one location: those listing it, and, at the default location (``default``), those
        listing none (so an install from before locations keeps its alerts)."""
        listed = Q(locations=location_id)
        return self.filter(listed | Q(locations__isnull=True) if default else listed).distinct()


class Driver(models.Model):
    """A person (or group) reached in one Telegram chat: a delivery driver who receives stock alerts, a buyer who
    receives the daily reorder digest, or both (``role``)."""

    name = models.CharField(_("name"), max_length=120)
    role = models.CharField(_("role"), max_length=8, choices=Role.choices, default=Role.DRIVER,
                            help_text=_("Drivers get the stock alerts; buyers get the daily digest of reorder "
                                        "suggestions and the /compras command."))
    chat_id = models.BigIntegerField(_("Telegram chat id"), null=True, blank=True, unique=True)
    is_group = models.BooleanField(_("group chat"), default=False)
    active = models.BooleanField(_("active"), default=True)
    language = models.CharField(_("language"), max_length=8, choices=Language.choices, default=Language.PT_BR)
    subscription = models.CharField(_("subscription"), max_length=16, choices=Subscription.choices,
                                    default=Subscription.ALL)
    categories = models.JSONField(_("categories"), default=list, blank=True)
    products = models.ManyToManyField(Product, blank=True, related_name="+", verbose_name=_("products"))
    locations = models.ManyToManyField(
        Location, blank=True, related_name="telegram_recipients", verbose_name=_("locations"),
        help_text=_("Alerts, bot answers and reorder suggestions of these locations. None: the default location's."))
    quiet_start = models.TimeField(_("quiet hours from"), null=True, blank=True)
    quiet_end = models.TimeField(_("quiet hours until"), null=True, blank=True)
    unreachable = models.BooleanField(_("unreachable"), default=False,
                                      help_text=_("Telegram refused delivery (bot blocked or chat gone)."))
    unreachable_reason = models.CharField(_("unreachable reason"), max_length=200, blank=True)
    link_token_hash = models.CharField(max_length=64, blank=True, db_index=True, editable=False,
                                       verbose_name=_("link token hash"))
    link_token_expires_at = models.DateTimeField(null=True, blank=True, editable=False,
                                                 verbose_name=_("link token expires at"))
    linked_at = models.DateTimeField(_("linked at"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = DriverQuerySet.as_manager()

    class Meta:
        verbose_name = _("driver")
        verbose_name_plural = _("drivers")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_driver(self) -> bool:
        return self.role in DRIVER_ROLES

    @property
    def is_buyer(self) -> bool:
        return self.role in BUYER_ROLES


class DriverMute(models.Model):
    """``/silenciar``: no new alerts about this product for this driver until ``until``."""

    driver = models.ForeignKey(Driver, on_delete=models.CASCADE, related_name="mutes", verbose_name=_("driver"))
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+", verbose_name=_("product"))
    until = models.DateTimeField(verbose_name=_("until"))

    class Meta:
        verbose_name = _("driver mute")
        verbose_name_plural = _("driver mutes")
        constraints = [models.UniqueConstraint(fields=["driver", "product"], name="driver_mute_unique")]


class Level(models.TextChoices):
    OK = "ok", _("ok")
    LOW = "low", _("low")
    OUT = "out", _("out of stock")


class AlertState(models.Model):
    """Where one product stands at one location: its stock level and its projected-stockout risk, each with an
    episode counter. Each location has its own hysteresis and episodes."""

    # The unique (product, location) constraint starts with product_id, so the column needs no index of its own.
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="alert_states", db_index=False,
                                verbose_name=_("product"))
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="alert_states",
                                 verbose_name=_("location"))
    level = models.CharField(_("level"), max_length=8, choices=Level.choices, default=Level.OK)
    episode = models.PositiveIntegerField(default=0, help_text=_("Grows by one each time the product leaves OK."),
                                          verbose_name=_("episode"))
    changed_at = models.DateTimeField(_("changed at"), auto_now=True)
    projected_stockout = models.DateField(_("projected stockout"), null=True, blank=True)
    projected_episode = models.PositiveIntegerField(default=0, verbose_name=_("projected episode"))

    class Meta:
        verbose_name = _("alert state")
        verbose_name_plural = _("alert states")
        constraints = [
            models.UniqueConstraint(fields=["product", "location"], name="alert_state_product_location_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.product_id}@{self.location_id}: {self.level}"


class Substitute(models.Model):
    """A substitute staff chose for a product; without any, alerts suggest in-stock products of the category."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="substitutes_set",
                                verbose_name=_("product"))
    substitute = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+", verbose_name=_("substitute"))
    position = models.PositiveSmallIntegerField(default=0, verbose_name=_("position"))

    class Meta:
        verbose_name = _("substitute")
        verbose_name_plural = _("substitutes")
        ordering = ["product", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["product", "substitute"], name="substitute_unique"),
            models.CheckConstraint(condition=~Q(product=models.F("substitute")), name="substitute_not_self"),
        ]


class AlertKind(models.TextChoices):
    STOCK = "stock", _("stock level")
    PROJECTED = "projected", _("projected stockout")
    REORDER_DIGEST = "reorder_digest", _("reorder digest")


class MessageLevel(models.TextChoices):
    LOW = "low", _("low")
    OUT = "out", _("out of stock")
    PROJECTED = "projected", _("projected stockout")
    RESOLVED = "resolved", _("resolved")
    REORDER = "reorder", _("reorder suggestions")


class OutboxState(models.TextChoices):
    PENDING = "pending", _("pending")
    SENT = "sent", _("sent")
    FAILED = "failed", _("failed")
    DEAD = "dead", _("dead")


class AlertOutbox(models.Model):
    """One alert to one driver, written with the stock change. Later level changes edit the same Telegram message,
    except running out: LOW → OUT sets ``ring``, and the next delivery sends a new message that replies to the
    old one (so the phone rings); from then on the alert's message is the new one.

    ``changed_at`` is when the stock change behind the current content happened (shown in the text).
    ``revision`` grows with every content change; the row is delivered when ``delivered_revision`` catches up.
    Rows delivered together in one digest share ``message_id``. ``copy_message_ids`` are further copies of
    that message Telegram accepted after our client had timed out; edits go to them as well.
    ``failing_since`` is when the current outage began for this row (None while it is not failing).
    ``location`` is where the stock changed: episodes count per product and location.

    A buyer's daily reorder digest is kind ``reorder_digest``: no product, one row per message ``part`` of
    ``digest_date`` with its ``text`` fixed when written; unique per buyer, day and part, never edited.
    """

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+", verbose_name=_("product"),
                                null=True, blank=True)
    # Where the product's stock changed; None only on a reorder digest part.
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="+", verbose_name=_("location"),
                                 null=True, blank=True)
    driver = models.ForeignKey(Driver, on_delete=models.CASCADE, related_name="alerts", verbose_name=_("driver"))
    episode = models.PositiveIntegerField(verbose_name=_("episode"))
    kind = models.CharField(max_length=16, choices=AlertKind.choices, verbose_name=_("kind"))
    level = models.CharField(max_length=16, choices=MessageLevel.choices, verbose_name=_("level"))
    available = models.BigIntegerField(default=0, verbose_name=_("available"))
    stockout_date = models.DateField(null=True, blank=True, verbose_name=_("stockout date"))
    state = models.CharField(max_length=8, choices=OutboxState.choices, default=OutboxState.PENDING,
                             verbose_name=_("state"))
    revision = models.PositiveIntegerField(default=1, verbose_name=_("revision"))
    delivered_revision = models.PositiveIntegerField(default=0, verbose_name=_("delivered revision"))
    attempts = models.PositiveIntegerField(default=0, verbose_name=_("attempts"))
    last_error = models.CharField(max_length=300, blank=True, verbose_name=_("last error"))
    chat_id = models.BigIntegerField(null=True, blank=True, verbose_name=_("chat id"))
    message_id = models.BigIntegerField(null=True, blank=True, verbose_name=_("message id"))
    copy_message_ids = ArrayField(models.BigIntegerField(), default=list, blank=True,
                                                         verbose_name=_("copy message ids"))
    ring = models.BooleanField(default=False, verbose_name=_("ring"))
    changed_at = models.DateTimeField(default=timezone.now, verbose_name=_("changed at"))
    failing_since = models.DateTimeField(null=True, blank=True, verbose_name=_("failing since"))
    next_attempt_at = models.DateTimeField(null=True, blank=True, verbose_name=_("next attempt at"))
    claimed_until = models.DateTimeField(null=True, blank=True, verbose_name=_("claimed until"))
    claim_token = models.CharField(max_length=32, blank=True, verbose_name=_("claim token"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))
    sent_at = models.DateTimeField(null=True, blank=True, verbose_name=_("sent at"))
    digest_date = models.DateField(null=True, blank=True, verbose_name=_("digest day"))
    part = models.PositiveSmallIntegerField(default=0, verbose_name=_("part"))
    text = models.TextField(blank=True, verbose_name=_("text"))

    class Meta:
        verbose_name = _("alert message")
        verbose_name_plural = _("alert outbox")
        ordering = ["-id"]
        constraints = [
            # Once per (driver, product, location, episode, kind): each location has its own episodes.
            models.UniqueConstraint(fields=["product", "location", "episode", "driver", "kind"],
                                    name="alert_outbox_location_unique"),
            # A re-run of the day's digest job writes nothing a second time.
            models.UniqueConstraint(fields=["driver", "digest_date", "part"], name="alert_outbox_digest_unique",
                                    condition=Q(kind="reorder_digest")),
            models.CheckConstraint(
                condition=Q(kind="reorder_digest", digest_date__isnull=False, product__isnull=True)
                | (~Q(kind="reorder_digest") & Q(product__isnull=False)),
                name="alert_outbox_product_or_digest"),
        ]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="alert_outbox_due_idx",
                         condition=Q(state__in=["pending", "failed"])),
        ]

    def __str__(self) -> str:
        if self.kind == AlertKind.REORDER_DIGEST:
            return f"{self.kind} {self.digest_date} part {self.part + 1} → {self.driver_id} ({self.state})"
        return f"{self.kind}/{self.level} #{self.product_id} → {self.driver_id} ({self.state})"


class TelegramUpdate(models.Model):
    """Update ids seen by the webhook or poller, kept at least 24 h so Telegram's redeliveries are ignored.

    Also each chat's queue of commands: a chat's updates are answered in ``update_id`` order (the order sent),
    one reply per chat slot of Telegram's rate limit. Processing an update stores its ``reply`` (a
    sendMessage payload) until it goes out (``replied_at``); ``claimed_until`` is the lease of the worker
    sending it.
    """

    update_id = models.BigIntegerField(primary_key=True, verbose_name=_("update id"))
    payload = models.JSONField(verbose_name=_("payload"))
    chat_id = models.BigIntegerField(null=True, blank=True, verbose_name=_("chat id"))
    received_at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name=_("received at"))
    processed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("processed at"))
    reply = models.JSONField(null=True, blank=True, verbose_name=_("reply"))
    replied_at = models.DateTimeField(null=True, blank=True, verbose_name=_("replied at"))
    claimed_until = models.DateTimeField(null=True, blank=True, verbose_name=_("claimed until"))

    class Meta:
        verbose_name = _("Telegram update")
        verbose_name_plural = _("Telegram updates")
        indexes = [
            # The sweep's question: what was stored but never processed (its task was lost)?
            models.Index(fields=["update_id"], name="telegram_update_unprocessed",
                         condition=Q(processed_at__isnull=True)),
            # A chat's queue: its updates not answered yet, oldest first.
            models.Index(fields=["chat_id", "update_id"], name="telegram_update_chat_queue",
                         condition=Q(replied_at__isnull=True)),
        ]
