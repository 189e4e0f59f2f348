"""Writes for API clients: creating them, changing them and rotating their tokens."""
from django.db import transaction
from django.utils.translation import gettext as _

from core.errors import ValidationFailed
from core.models import ALL_SCOPES, ApiClient, token_generate, token_hash
from inventory.selectors import locations_resolve_many


def _api_client_fields_clean(*, name: str, scopes: list[str], location_codes: list[str] | None,
                             pk: int | None = None) -> tuple[list[str], list[str]]:
    """(scopes, location codes) as stored, sorted; ValidationFailed for an unknown scope or a taken name,
    UnknownLocation for a code that names no active location."""
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown:
        raise ValidationFailed(_("Unknown scopes: %(scopes)s") % {"scopes": ", ".join(unknown)},
                               details={"scopes": unknown})
    if ApiClient.objects.filter(name=name).exclude(pk=pk).exists():
        raise ValidationFailed(_("An API client named %(name)r already exists.") % {"name": name},
                               details={"name": name})
    codes = [place.code for place in locations_resolve_many(codes=location_codes or [])]
    return sorted(set(scopes)), sorted(set(codes))


@transaction.atomic
def api_client_create(*, name: str, scopes: list[str],
                      location_codes: list[str] | None = None) -> tuple[ApiClient, str]:
    """Create a client and return it with its raw token, which is shown once and stored only hashed.
    ``location_codes`` limits it to those locations (empty or None: every location)."""
    scopes, codes = _api_client_fields_clean(name=name, scopes=scopes, location_codes=location_codes)
    raw = token_generate()
    client = ApiClient.objects.create(
        name=name, token_hash=token_hash(raw), token_hint=raw[:10], scopes=scopes, location_codes=codes,
    )
    return client, raw


@transaction.atomic
def api_client_update(*, client: ApiClient, name: str, scopes: list[str], location_codes: list[str] | None,
                      active: bool) -> ApiClient:
    """Change a client's name, scopes, locations (empty or None: every location) and whether it is active,
    checked as on creation; its token stays."""
    scopes, codes = _api_client_fields_clean(name=name, scopes=scopes, location_codes=location_codes, pk=client.pk)
    client.name, client.scopes, client.location_codes, client.active = name, scopes, codes, active
    client.save()
    return client


@transaction.atomic
def api_client_rotate_token(*, client: ApiClient) -> str:
    raw = token_generate()
    client.token_hash = token_hash(raw)
    client.token_hint = raw[:10]
    client.save(update_fields=["token_hash", "token_hint"])
    return raw
