"""Create an API client with scopes and print its token (shown once; only its hash is stored)."""
from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError
from core.services import api_client_create


class Command(BaseCommand):
    help = "Create an API client and print its bearer token."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--scopes", default="read", help="Comma-separated: read,reserve,manage")

    def handle(self, *args, name: str, scopes: str, **options):
        try:
            client, token = api_client_create(name=name, scopes=[s.strip() for s in scopes.split(",") if s.strip()])
        except DomainError as error:
            raise CommandError(error.message) from error
        self.stdout.write(f"API client {client.name} created with scopes {','.join(client.scopes)}.")
        self.stdout.write(token)
