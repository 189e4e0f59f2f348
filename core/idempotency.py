"""Idempotency-Key handling shared by the services that accept one: the key, the request's fingerprint, the first answer."""
import hashlib
import json
from typing import Any

from django.db import connection, models
from django.utils.translation import gettext as _

from core.errors import Unprocessable, ValidationFailed
from core.models import ApiClient

IDEMPOTENCY_KEY_MAX_LENGTH = 255


def idempotency_key_clean(key: object) -> str | None:
    """The stripped key, None when none was sent; ValidationFailed when empty or too long."""
    if key is None:
        return None
    if not isinstance(key, str) or not key.strip() or len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
        raise ValidationFailed(_("Idempotency-Key must be 1-%(max)d characters.") % {"max": IDEMPOTENCY_KEY_MAX_LENGTH},
                               details={"idempotency_key": "invalid"})
    return key.strip()


def request_fingerprint(body: dict[str, Any]) -> str:
    """What identifies a request's meaning, so a reused key with another request is caught."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def idempotent_first(*, model: type[models.Model], client: ApiClient | None, key: str, fingerprint: str,
                     kind: str) -> Any:
    """The ``model`` row this client already made with this key, after waiting for a concurrent maker
    (a transaction-scoped advisory lock); None if there is none yet. Call inside the transaction that
    would create it. Unprocessable when the key was used with another request."""
    with connection.cursor() as cursor:
        # Serialises requests with one key: the second waits here, then sees the first's committed row.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                       [f"{kind}-key:{client.pk if client else '-'}:{key}"])
    existing = model.objects.filter(client=client, idempotency_key=key).first()
    if existing is None:
        return None
    if existing.request_fingerprint != fingerprint:
        raise Unprocessable(_("This Idempotency-Key was already used with a different request."),
                            details={"idempotency_key": key, f"{kind}_id": str(existing.pk)})
    existing.replayed = True
    return existing
