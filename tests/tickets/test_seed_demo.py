"""python manage.py seed_demo and demo_users."""

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command

from tickets.models import Category, ReplyTemplate, Ticket, TicketNote

pytestmark = pytest.mark.django_db


def test_seed_demo_loads_the_demo_and_is_idempotent(capsys) -> None:  # type: ignore[no-untyped-def]
    call_command("seed_demo")
    counts = (
        Category.objects.count(),
        ReplyTemplate.objects.count(),
        Ticket.objects.filter(status=Ticket.Status.RESOLVED).count(),
        TicketNote.objects.count(),
        Ticket.objects.exclude(status=Ticket.Status.RESOLVED).count(),
    )
    call_command("seed_demo")

    assert counts[0] >= 8
    assert counts[1] >= counts[0]
    assert counts[2] >= 60
    assert counts[3] == counts[2]  # every historical ticket carries its resolution note
    assert counts[4] >= 10
    assert set(Category.objects.filter(templates__isnull=True)) == set()
    assert (
        Category.objects.count(),
        ReplyTemplate.objects.count(),
        Ticket.objects.filter(status=Ticket.Status.RESOLVED).count(),
        TicketNote.objects.count(),
        Ticket.objects.exclude(status=Ticket.Status.RESOLVED).count(),
    ) == counts
    assert "0 history tickets and 0 new tickets added" in capsys.readouterr().out


def test_demo_users_get_new_random_passwords(capsys) -> None:  # type: ignore[no-untyped-def]
    call_command("demo_users")
    first = capsys.readouterr().out
    call_command("demo_users")
    second = capsys.readouterr().out

    password = first.split("admin")[1].split()[0]
    assert password not in second
    assert authenticate(username="admin", password=password) is None  # replaced by the rerun
    new_password = second.split("admin")[1].split()[0]
    assert authenticate(username="admin", password=new_password).is_superuser
    reviewer = get_user_model().objects.get(username="reviewer")
    assert reviewer.is_staff
    assert not reviewer.is_superuser
    assert list(reviewer.groups.values_list("name", flat=True)) == ["Support reviewers"]
