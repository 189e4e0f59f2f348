"""The Telegram webhook: verifies Telegram's secret header, records the update once and hands it to Celery."""
import hmac
import logging
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import ValidationFailed
from core.jsoninput import JSONInputRefused
from notifications import services

logger = logging.getLogger(__name__)


class TelegramSecretHeader(permissions.BasePermission):
    """Constant-time compare of X-Telegram-Bot-Api-Secret-Token; no secret configured means no webhook."""

    message = gettext_lazy("Wrong or missing Telegram secret token.")

    def has_permission(self, request, view) -> bool:
        expected = settings.TELEGRAM_WEBHOOK_SECRET
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def _process_later(update_id: int) -> None:
    from notifications.tasks import telegram_update_process_task

    try:
        telegram_update_process_task.delay(update_id)
    except Exception:
        logger.exception("could not queue telegram update", extra={"update_id": update_id})


class TelegramWebhookApi(APIView):
    """POST /telegram/webhook/: answers 200 at once; a repeated update_id is acknowledged and ignored."""

    authentication_classes: list = []
    permission_classes = [TelegramSecretHeader]
    throttle_classes: list = []

    @extend_schema(request=OpenApiTypes.OBJECT, responses={200: OpenApiTypes.OBJECT})
    def post(self, request):
        try:
            update = request.data
        except JSONInputRefused as exc:
            # Telegram delivers an update again after every non-2xx answer, and this one can never be
            # read (a NUL character, a number past the float range): acknowledge it and drop it.
            logger.warning("telegram update dropped: %s", exc.detail)
            return Response({"ok": True})
        update_id = update.get("update_id") if isinstance(update, dict) else None
        if isinstance(update_id, bool) or not isinstance(update_id, int):
            raise ValidationFailed(gettext_lazy("An update needs an integer update_id."), details={"update_id": update_id})
        with transaction.atomic():
            if services.telegram_update_record(update=update):
                transaction.on_commit(partial(_process_later, update_id))
        return Response({"ok": True})
