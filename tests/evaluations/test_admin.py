"""Triage admins curate evaluation examples in the admin."""

import json

import pytest
from django.test import Client

from agent.services import triage_ticket_run
from evaluations.models import EvaluationExample
from tests.agent.scripted import ScriptedBackend, submit
from tests.factories import CategoryFactory, TicketFactory

pytestmark = pytest.mark.django_db


def test_a_triage_admin_adds_an_example_for_a_proposal_and_opens_it(
    client: Client, triage_admin
) -> None:  # type: ignore[no-untyped-def]
    """The example's proposal widget lists proposals in the review queue's order, which must
    resolve outside the queue's own page."""
    CategoryFactory(slug="billing")
    ticket = TicketFactory(subject="Charged twice")
    proposal = triage_ticket_run(ticket_id=ticket.pk, backend=ScriptedBackend(submit(ticket.pk)))
    assert proposal is not None
    client.force_login(triage_admin)

    assert client.get("/admin/evaluations/evaluationexample/add/").status_code == 200
    response = client.post(
        "/admin/evaluations/evaluationexample/add/",
        {
            "suite": "curated",
            "source": "curated",
            "case_type": "normal",
            "ticket_snapshot": json.dumps({"subject": "Charged twice", "body": "Refund one."}),
            "acceptable_outcomes": '["proposal"]',
            "expected_category": "billing",
            "expected_urgency": "high",
            "expected_flags": "{}",
            "fault": "{}",
            "is_active": "on",
            "proposal": proposal.pk,
        },
    )

    assert response.status_code == 302
    example = EvaluationExample.objects.get()
    assert (example.suite, example.proposal_id, example.expected_category) == (
        "curated",
        proposal.pk,
        "billing",
    )
    page = client.get(f"/admin/evaluations/evaluationexample/{example.pk}/change/")
    assert page.status_code == 200
    assert f"Proposal for #{ticket.pk}" in page.content.decode()  # the raw id's label
