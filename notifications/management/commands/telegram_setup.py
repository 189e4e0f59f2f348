"""``manage.py telegram_setup``: register the webhook (with its secret token) and the bot's command menu."""
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from notifications.telegram import TelegramClient, TelegramError

COMMANDS = {
    "pt": [
        ("estoque", "Estoque e disponibilidade de um produto"),
        ("baixo", "Produtos abaixo do limite"),
        ("ruptura", "Sem estoque agora e rupturas previstas em 7 dias"),
        ("silenciar", "Silenciar alertas de um produto"),
        ("compras", "Sugestões de compra abertas (compradores)"),
        ("ajuda", "Ajuda"),
    ],
    "en": [
        ("stock", "Stock and availability of a product"),
        ("low", "Products below threshold"),
        ("ruptura", "Out of stock now and stockouts projected within 7 days"),
        ("mute", "Mute alerts about a product"),
        ("reorder", "Open reorder suggestions (buyers)"),
        ("help", "Help"),
    ],
}


class Command(BaseCommand):
    help = "Call setWebhook (with TELEGRAM_WEBHOOK_SECRET) and setMyCommands for the bot."

    def add_arguments(self, parser):
        parser.add_argument("--url", default=settings.TELEGRAM_WEBHOOK_URL,
                            help="Public HTTPS URL of /telegram/webhook/ (default TELEGRAM_WEBHOOK_URL).")

    def handle(self, *args, url: str, **options):
        client = TelegramClient()
        if not client.configured:
            raise CommandError("TELEGRAM_BOT_TOKEN is not set.")
        if not url:
            raise CommandError("Give --url or set TELEGRAM_WEBHOOK_URL.")
        if not settings.TELEGRAM_WEBHOOK_SECRET:
            raise CommandError("TELEGRAM_WEBHOOK_SECRET is not set; the webhook would refuse every update.")
        try:
            client.call("setWebhook", {"url": url, "secret_token": settings.TELEGRAM_WEBHOOK_SECRET,
                                       "allowed_updates": ["message", "callback_query"]})
            client.call("setMyCommands", {"commands": _menu("pt")})
            client.call("setMyCommands", {"commands": _menu("pt"), "language_code": "pt"})
            client.call("setMyCommands", {"commands": _menu("en"), "language_code": "en"})
        except TelegramError as exc:
            raise CommandError(f"Telegram refused: {exc.description}") from exc
        self.stdout.write(self.style.SUCCESS(f"Webhook set to {url}; commands registered."))


def _menu(language: str) -> list[dict[str, str]]:
    return [{"command": c, "description": d} for c, d in COMMANDS[language]]
