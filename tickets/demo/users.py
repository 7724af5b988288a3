"""Demo accounts: a superuser and one user per staff role, with fresh random passwords."""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.db import transaction

from tickets.roles import SUPPORT_REVIEWERS, TRIAGE_ADMINS

DEMO_ACCOUNTS: list[tuple[str, str | None]] = [
    ("admin", None),  # superuser
    ("reviewer", SUPPORT_REVIEWERS),
    ("triage-admin", TRIAGE_ADMINS),
]


@transaction.atomic
def demo_users_reset() -> dict[str, str]:
    """Creates the demo accounts if missing and gives each a new random password, which is
    returned (username -> password) so the demo can print it. Passwords are never stored in
    clear or reused between runs."""
    user_model = get_user_model()
    passwords = {}
    for username, group_name in DEMO_ACCOUNTS:
        user: AbstractUser = user_model.objects.filter(username=username).first() or user_model(
            username=username, email=f"{username}@example.com"
        )
        user.is_staff = True
        user.is_superuser = group_name is None
        passwords[username] = secrets.token_urlsafe(12)
        user.set_password(passwords[username])
        user.save()
        if group_name:
            user.groups.add(Group.objects.get(name=group_name))
    return passwords
