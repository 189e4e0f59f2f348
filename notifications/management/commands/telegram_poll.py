"""``manage.py telegram_poll``: long polling for development, when Telegram cannot reach a public webhook."""
import time

from django.core.management.base import BaseCommand, CommandError

from notifications import services
from notifications.bot import bot_update_handle
from notifications.telegram import TelegramClient, TelegramError


class Command(BaseCommand):
    help = "Fetch updates with getUpdates and answer them here (removes any webhook first)."

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=int, default=25, help="Long-poll timeout in seconds.")
        parser.add_argument("--once", action="store_true", help="One getUpdates round, then exit.")

    def handle(self, *args, timeout: int, once: bool, **options):
        client = TelegramClient()
        if not client.configured:
            raise CommandError("TELEGRAM_BOT_TOKEN is not set.")
        client.call("deleteWebhook", {"drop_pending_updates": False})
        offset = None
        self.stdout.write("Polling Telegram for updates (Ctrl+C to stop)...")
        while True:
            try:
                updates = client.call("getUpdates", {"offset": offset, "timeout": timeout,
                                                     "allowed_updates": ["message", "callback_query"]},
                                      timeout=timeout + 5)
            except TelegramError as exc:
                self.stderr.write(f"getUpdates failed: {exc.description}")
                if once:
                    return
                time.sleep(2)
                continue
            for update in updates or []:
                offset = int(update["update_id"]) + 1
                if services.telegram_update_record(update=update):
                    claimed = services.telegram_update_claim(update_id=int(update["update_id"]))
                    if claimed is not None:
                        bot_update_handle(update=claimed, client=client)
            if once:
                return
