"""Writes for API clients: creating them, changing them and rotating their tokens."""
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils.translation import gettext as _

from core.errors import LocationForbidden, ValidationFailed
from core.models import ALL_SCOPES, ApiClient, token_generate, token_hash
from inventory.selectors import locations_resolve_many, user_location_codes


def api_client_locations_check(*, user: AbstractBaseUser | None, location_codes: list[str],
                               client: ApiClient | None = None) -> None:
    """LocationForbidden unless ``user`` may give a client these (resolved) location codes.

    A staff user limited to some locations (Location.staff_users) gives only some of theirs, never none:
    an empty list means every location. The client they change must be theirs already, or they could
    take over a client of another store by narrowing it to their own. ``user`` None (a management
    command), superusers and staff listed at no location give anything."""
    allowed = user_location_codes(user)
    if allowed is None:
        return
    mine = sorted(allowed)
    if client is not None and client.pk is not None:
        stored = set(ApiClient.objects.filter(pk=client.pk).values_list("location_codes", flat=True).get())
        if not stored or not stored <= allowed:
            raise LocationForbidden(_("This API client uses locations that are not yours."),
                                    details={"locations": sorted(stored - allowed), "allowed": mine})
    refused = sorted(set(location_codes) - allowed)
    if not location_codes or refused:
        raise LocationForbidden(_("Name some of your locations: %(codes)s.") % {"codes": ", ".join(mine)},
                                details={"locations": refused, "allowed": mine})


def _api_client_fields_clean(*, name: str, scopes: list[str], location_codes: list[str] | None,
                             user: AbstractBaseUser | None, client: ApiClient | None = None
                             ) -> tuple[list[str], list[str]]:
    """(scopes, location codes) as stored, sorted; ValidationFailed for an unknown scope or a taken name,
    UnknownLocation for a code that names no active location, LocationForbidden for one ``user`` may not
    give."""
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown:
        raise ValidationFailed(_("Unknown scopes: %(scopes)s") % {"scopes": ", ".join(unknown)},
                               details={"scopes": unknown})
    pk = client.pk if client is not None else None
    if ApiClient.objects.filter(name=name).exclude(pk=pk).exists():
        raise ValidationFailed(_("An API client named %(name)r already exists.") % {"name": name},
                               details={"name": name})
    codes = sorted({place.code for place in locations_resolve_many(codes=location_codes or [])})
    api_client_locations_check(user=user, location_codes=codes, client=client)
    return sorted(set(scopes)), codes


@transaction.atomic
def api_client_create(*, name: str, scopes: list[str], location_codes: list[str] | None = None,
                      user: AbstractBaseUser | None = None) -> tuple[ApiClient, str]:
    """Create a client and return it with its raw token, which is shown once and stored only hashed.
    ``location_codes`` limits it to those locations (empty or None: every location); ``user`` is the staff
    user acting, held to their own locations (None: a management command)."""
    scopes, codes = _api_client_fields_clean(name=name, scopes=scopes, location_codes=location_codes, user=user)
    raw = token_generate()
    client = ApiClient.objects.create(
        name=name, token_hash=token_hash(raw), token_hint=raw[:10], scopes=scopes, location_codes=codes,
    )
    return client, raw


@transaction.atomic
def api_client_update(*, client: ApiClient, name: str, scopes: list[str], location_codes: list[str] | None,
                      active: bool, user: AbstractBaseUser | None = None) -> ApiClient:
    """Change a client's name, scopes, locations (empty or None: every location) and whether it is active,
    checked as on creation (``user`` held to their own locations); its token stays."""
    scopes, codes = _api_client_fields_clean(name=name, scopes=scopes, location_codes=location_codes, user=user,
                                             client=client)
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
