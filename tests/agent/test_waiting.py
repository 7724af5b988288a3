"""Age and review targets: how long a ticket waited since it came in, against a per-urgency
target Triage admins set; overdue rows are marked in the queue and on the review page."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from agent.models import ReviewTarget, TriageProposal
from agent.services import triage_ticket_run
from tests.agent.scripted import ScriptedBackend, submit
from tests.agent.test_queues import clarify
from tests.factories import TicketFactory
from tickets.models import Ticket

QUEUE = "/admin/agent/triageproposal/?status__exact=pending"


def waited(subject: str, hours: float, step=None) -> TriageProposal:  # type: ignore[no-untyped-def]
    ticket = TicketFactory(subject=subject)
    Ticket.objects.filter(pk=ticket.pk).update(created_at=timezone.now() - timedelta(hours=hours))
    step = step or (lambda pk: submit(pk, urgency="high"))
    proposal = triage_ticket_run(ticket_id=ticket.pk, backend=ScriptedBackend(step(ticket.pk)))
    assert proposal is not None
    return proposal


def row(page: str, subject: str) -> str:
    start = page.index(subject)
    return page[page.rindex("<tr", 0, start) : page.index("</tr>", start)]


def test_the_targets_start_at_an_hour_four_hours_a_day_and_three_days(db) -> None:  # type: ignore[no-untyped-def]
    assert dict(ReviewTarget.objects.values_list("urgency", "minutes")) == {
        "urgent": 60,
        "high": 240,
        "normal": 1440,
        "low": 4320,
    }


def test_the_queue_marks_rows_past_their_urgencys_target(client: Client, history, reviewer) -> None:  # type: ignore[no-untyped-def]
    waited("High for five hours", 5)
    waited("High for three hours", 3)
    waited("A question for five hours", 5, clarify)  # no urgency: held to high's target
    client.force_login(reviewer)

    page = client.get(QUEUE).content.decode()

    assert 'queue-overdue">overdue' in row(page, "High for five hours")
    assert "5 h" in row(page, "High for five hours")
    assert "queue-overdue" not in row(page, "High for three hours")
    assert 'queue-overdue">overdue' in row(page, "A question for five hours")
    assert "target 4 h (no urgency: high)" in row(page, "A question for five hours")


def test_a_triage_admin_moves_the_target_and_the_queue_follows(
    client: Client, history, reviewer, triage_admin
) -> None:  # type: ignore[no-untyped-def]
    waited("High for three hours", 3)
    high = ReviewTarget.objects.get(urgency="high")
    client.force_login(triage_admin)

    refused = client.post(
        f"/admin/agent/reviewtarget/{high.pk}/change/", {"minutes": "0", "_save": "Save"}
    )
    assert refused.status_code == 200  # the form again, with its error
    assert ReviewTarget.objects.get(pk=high.pk).minutes == 240
    saved = client.post(
        f"/admin/agent/reviewtarget/{high.pk}/change/", {"minutes": "120", "_save": "Save"}
    )
    assert saved.status_code == 302
    client.force_login(reviewer)
    page = client.get(QUEUE).content.decode()

    assert 'queue-overdue">overdue' in row(page, "High for three hours")


def test_reviewers_read_the_targets_but_do_not_change_them(client: Client, reviewer) -> None:  # type: ignore[no-untyped-def]
    high = ReviewTarget.objects.get(urgency="high")
    client.force_login(reviewer)

    assert client.get("/admin/agent/reviewtarget/").status_code == 200
    response = client.post(
        f"/admin/agent/reviewtarget/{high.pk}/change/", {"minutes": "1", "_save": "Save"}
    )

    assert response.status_code == 403
    assert ReviewTarget.objects.get(pk=high.pk).minutes == 240


@pytest.mark.parametrize(("hours", "overdue"), [(5, True), (3, False)])
def test_the_review_page_says_the_wait_and_how_overdue(
    client: Client, history, reviewer, hours: int, overdue: bool
) -> None:  # type: ignore[no-untyped-def]
    proposal = waited("Charged twice", hours)
    client.force_login(reviewer)

    page = client.get(f"/admin/agent/triageproposal/{proposal.pk}/change/").content.decode()

    assert f"Waiting {hours} h since it came in · target 4 h (high)" in page
    assert ("overdue by 1 h" in page) is overdue
