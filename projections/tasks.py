"""Celery tasks of projections: the deduplicated recompute, the beat fallback and the nightly rebuild."""
from celery import shared_task

from projections import services


@shared_task(acks_late=True, ignore_result=True)
def projection_recompute_task(product_ids: list[int], location_id: int | None = None) -> int:
    # Release the dedupe marks before reading, so a change committed from here on schedules again. A task
    # queued before locations has no location_id: it meant the default location.
    services.projection_pending_release(product_ids=product_ids, location_id=location_id)
    return len(services.projection_recompute(product_ids=product_ids, location_id=location_id))


@shared_task(acks_late=True, ignore_result=True)
def projection_fallback_task() -> int:
    return len(services.projection_fallback_run())


@shared_task(acks_late=True, ignore_result=True)
def projection_rebuild_task() -> int:
    return services.projection_rebuild_all(workers=2)


@shared_task(ignore_result=True)
def projection_transitions_task(items: list[list]) -> int:
    """Risk events and alerts of a large recompute (a rebuild), sent off the request/command path."""
    transitions = [services.RiskTransition.from_json(item) for item in items]
    services.projection_transitions_publish(transitions)
    return len(transitions)
