"""API clients: machines (storefronts, ERPs) that call the API with a bearer token and scopes."""
import hashlib
import secrets

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils.translation import gettext_lazy as _

SCOPE_READ = "read"
SCOPE_RESERVE = "reserve"
SCOPE_MANAGE = "manage"
ALL_SCOPES = (SCOPE_READ, SCOPE_RESERVE, SCOPE_MANAGE)

TOKEN_PREFIX = "sp_"


def token_hash(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode()).hexdigest()


def token_generate() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class ApiClient(models.Model):
    name = models.CharField(_("name"), max_length=100, unique=True)
    token_hash = models.CharField(max_length=64, unique=True, editable=False, verbose_name=_("token hash"))
    token_hint = models.CharField(_("token starts with"), max_length=12, editable=False)
    scopes = models.JSONField(_("scopes"), default=list)
    # Codes rather than a many-to-many: the client is cached per process with what it may use, and
    # a location's code never changes.
    location_codes = ArrayField(
        models.CharField(max_length=64), default=list, blank=True, verbose_name=_("locations"),
        help_text=_("Codes of the locations this client may read and reserve at; empty: every location."),
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    last_used_at = models.DateTimeField(null=True, blank=True, verbose_name=_("last used at"))

    # DRF treats request.user as authenticated when this is true.
    is_authenticated = True
    is_staff = False

    class Meta:
        verbose_name = _("API client")
        verbose_name_plural = _("API clients")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes
