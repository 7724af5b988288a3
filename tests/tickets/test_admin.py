"""Admin pages and role permissions."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from tests.factories import CategoryFactory, ResolvedTicketFactory, UserFactory
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


def test_roles_exist_with_their_permissions() -> None:
    reviewers = set(
        Group.objects.get(name="Support reviewers").permissions.values_list("codename", flat=True)
    )
    admins = set(
        Group.objects.get(name="Triage admins").permissions.values_list("codename", flat=True)
    )

    assert {"view_ticket", "view_category", "view_changerecord"} <= reviewers
    assert not {p for p in reviewers if p.startswith(("add_", "change_", "delete_"))} - {
        p for p in reviewers if p.endswith("proposal")
    }
    assert reviewers <= admins
    assert {"change_category", "add_replytemplate", "delete_replytemplate"} <= admins


@pytest.mark.parametrize(
    "path",
    [
        "/admin/tickets/ticket/?q=login&status__exact=resolved&urgency__exact=high",
        "/admin/tickets/category/?q=bill",
        "/admin/tickets/replytemplate/",
        "/admin/tickets/ticketnote/",
        "/admin/tickets/changerecord/",
    ],
)
def test_admin_lists_with_search_and_filters_render(client: Client, path: str) -> None:
    ResolvedTicketFactory.create_batch(3)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    assert client.get(path).status_code == 200


def test_ticket_search_finds_the_requesters_email(client: Client, reviewer) -> None:  # type: ignore[no-untyped-def]
    wanted = ResolvedTicketFactory(requester_email="maria@example.com")
    ResolvedTicketFactory(requester_email="ivo@example.net")
    client.force_login(reviewer)

    found = client.get("/admin/tickets/ticket/", {"q": "maria@example.com"})

    assert [t.pk for t in found.context["cl"].result_list] == [wanted.pk]


def test_reviewer_cannot_change_categories(client: Client, reviewer) -> None:  # type: ignore[no-untyped-def]
    category = CategoryFactory(name="Billing")
    client.force_login(reviewer)

    assert client.get(f"/admin/tickets/category/{category.pk}/change/").status_code == 200  # view
    response = client.post(
        f"/admin/tickets/category/{category.pk}/change/",
        {"slug": category.slug, "name": "Hacked", "keywords": "[]", "is_active": "on"},
    )
    assert response.status_code == 403
    category.refresh_from_db()
    assert category.name == "Billing"


def test_triage_admin_can_edit_categories(client: Client, triage_admin) -> None:  # type: ignore[no-untyped-def]
    category = CategoryFactory(name="Billing")
    client.force_login(triage_admin)

    response = client.post(
        f"/admin/tickets/category/{category.pk}/change/",
        {
            "slug": category.slug,
            "name": "Billing & payments",
            "keywords": '["refund"]',
            "is_active": "on",
            "templates-TOTAL_FORMS": "0",
            "templates-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302
    category.refresh_from_db()
    assert (category.name, category.keywords) == ("Billing & payments", ["refund"])


def test_admin_add_ticket_goes_through_ingest(
    client: Client, triage_admin, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    client.force_login(triage_admin)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(
            "/admin/tickets/ticket/add/",
            {
                "subject": "Phoned in: export broken",
                "body": "Customer called about CSV export.",
                "requester_email": "caller@example.com",
                "channel": "phone",
                "external_id": "",
                "notes-TOTAL_FORMS": "0",
                "notes-INITIAL_FORMS": "0",
                "agent_runs-TOTAL_FORMS": "0",  # the agent app's inline on the ticket page
                "agent_runs-INITIAL_FORMS": "0",
            },
        )

    assert response.status_code == 302
    ticket = Ticket.objects.get()
    assert (ticket.channel, ticket.external_id) == ("phone", None)
    assert len(callbacks) == 1  # queued for triage like any other ticket
