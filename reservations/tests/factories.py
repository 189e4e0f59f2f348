"""Factories for reservations: build them through the service so counters stay consistent."""
from datetime import timedelta

from reservations.services import reservation_create


def reservation_make(*, client=None, lines, ttl_seconds: int | None = None, **kwargs):
    """A real reservation made by ``reservation_create`` (stock counters move as they would in production)."""
    ttl = timedelta(seconds=ttl_seconds) if ttl_seconds is not None else None
    return reservation_create(client=client, lines=lines, ttl=ttl, **kwargs)
