"""Writes for API clients: creating them and rotating their tokens."""
from django.db import transaction
from django.utils.translation import gettext as _

from core.errors import ValidationFailed
from core.models import ALL_SCOPES, ApiClient, token_generate, token_hash


@transaction.atomic
def api_client_create(*, name: str, scopes: list[str],
                      location_codes: list[str] | None = None) -> tuple[ApiClient, str]:
    """Create a client and return it with its raw token, which is shown once and stored only hashed.
    ``location_codes`` limits it to those locations (empty or None: every location)."""
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown:
        raise ValidationFailed(_("Unknown scopes: %(scopes)s") % {"scopes": ", ".join(unknown)},
                               details={"scopes": unknown})
    if ApiClient.objects.filter(name=name).exists():
        raise ValidationFailed(_("An API client named %(name)r already exists.") % {"name": name},
                               details={"name": name})
    raw = token_generate()
    client = ApiClient.objects.create(
        name=name, token_hash=token_hash(raw), token_hint=raw[:10], scopes=sorted(set(scopes)),
        location_codes=sorted(set(location_codes or [])),
    )
    return client, raw


@transaction.atomic
def api_client_rotate_token(*, client: ApiClient) -> str:
    raw = token_generate()
    client.token_hash = token_hash(raw)
    client.token_hint = raw[:10]
    client.save(update_fields=["token_hash", "token_hint"])
    return raw
