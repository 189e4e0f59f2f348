"""Lift the bearer-token lockout of a client address before it ends by itself (README, "Security")."""
from django.core.management.base import BaseCommand

from core.security import token_lockout_clear


class Command(BaseCommand):
    help = "Lift the lockout of an address locked out for unknown bearer tokens, and forget its failures."

    def add_arguments(self, parser):
        parser.add_argument("address", help="The client address, as the lockout's log line names it.")

    def handle(self, *args, address: str, **options):
        if token_lockout_clear(address):
            self.stdout.write(f"Bearer tokens from {address} are accepted again.")
        else:
            self.stdout.write(f"{address} was not locked out; its failure count starts afresh.")
