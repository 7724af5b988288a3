from typing import Any

from django.core.management.base import BaseCommand

from tickets.demo.users import demo_users_reset


class Command(BaseCommand):
    help = "Create the demo accounts (admin, reviewer, triage-admin) with new random passwords."

    def handle(self, *args: Any, **options: Any) -> None:
        passwords = demo_users_reset()
        self.stdout.write("Demo accounts (new random passwords on every run):")
        for username, password in passwords.items():
            self.stdout.write(f"  {username:<14} {password}")
