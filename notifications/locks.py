"""Row locks of notifications, taken here only: the driver's row, which makes the claims of one chat take turns."""
from notifications.models import Driver


def driver_lock(*, driver_id: int) -> None:
    """FOR NO KEY UPDATE on one driver until the transaction ends. Writing outbox rows for the driver takes
    only KEY SHARE on it (the foreign key), so stock changes are never held up by a claim."""
    list(Driver.objects.select_for_update(no_key=True).filter(pk=driver_id).values_list("pk", flat=True))
