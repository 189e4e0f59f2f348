"""Make sure a staff superuser and a demo API client exist, and print how to use them."""
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from core.models import ALL_SCOPES, ApiClient
from core.services import api_client_create, api_client_rotate_token


class Command(BaseCommand):
    help = "Create (or reset) the admin user and the demo API client, printing the password and token."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--client", default="demo-storefront")

    def handle(self, *args, username: str, client: str, **options):
        password = secrets.token_urlsafe(9)
        user_model = get_user_model()
        user, _ = user_model.objects.get_or_create(username=username, defaults={"is_staff": True,
                                                                              "is_superuser": True})
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        existing = ApiClient.objects.filter(name=client).first()
        if existing:
            token = api_client_rotate_token(client=existing)
        else:
            _, token = api_client_create(name=client, scopes=list(ALL_SCOPES))
        self.stdout.write(f"Admin user:  {username} / {password}")
        self.stdout.write(f"API token:   {token}   (client {client}, scopes {','.join(ALL_SCOPES)})")
