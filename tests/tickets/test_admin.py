"""Admin pages and role permissions."""

import re

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
            "keywords": "refund,  charged twice ,VAT number,",
            "is_active": "on",
            "templates-TOTAL_FORMS": "0",
            "templates-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302
    category.refresh_from_db()
    assert (category.name, category.keywords) == (
        "Billing & payments",
        ["refund", "charged twice", "VAT number"],
    )
    page = client.get(f"/admin/tickets/category/{category.pk}/change/").content.decode()
    assert re.search(r'<textarea name="keywords"[^>]*>\s*refund, charged twice, VAT number</', page)


def test_a_reviewer_reads_the_keywords_as_a_comma_separated_line(client: Client, reviewer) -> None:  # type: ignore[no-untyped-def]
    category = CategoryFactory(keywords=["refund", "charged twice"])
    client.force_login(reviewer)

    page = client.get(f"/admin/tickets/category/{category.pk}/change/").content.decode()

    assert '<div class="readonly">refund, charged twice</div>' in page
    assert "[&quot;refund&quot;" not in page


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        (
            '["refund", "invoice"]',
            "Separate the keywords with commas, without brackets or double quotes, e.g. "
            "refund, charged twice, invoice.",
        ),
        ("refund, Refund", "“Refund” is listed twice."),
        ("refund, " + "x" * 61, "Keep each keyword to 60 characters: “" + "x" * 30 + "…” has 61."),
        ("refund, bad\x1bkey", "Contains the control character U+001B, which is not allowed."),
    ],
    ids=["json", "duplicate", "too-long", "control-character"],
)
def test_invalid_keywords_are_refused_with_a_clear_message(
    client: Client, triage_admin, typed: str, message: str
) -> None:  # type: ignore[no-untyped-def]
    category = CategoryFactory(name="Billing", keywords=["invoice"])
    client.force_login(triage_admin)

    response = client.post(
        f"/admin/tickets/category/{category.pk}/change/",
        {
            "slug": category.slug,
            "name": "Billing",
            "keywords": typed,
            "is_active": "on",
            "templates-TOTAL_FORMS": "0",
            "templates-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"keywords": [message]}
    category.refresh_from_db()
    assert category.keywords == ["invoice"]


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
