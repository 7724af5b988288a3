"""The runs' admin: production runs apart from evaluation runs, a run's page and its links."""

import re

import pytest
from django.test import Client

from agent.models import AgentRun
from agent.services import triage_ticket_run
from tests.agent.scripted import ScriptedBackend, submit
from tests.factories import TicketFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def runs(history) -> dict[str, AgentRun]:  # type: ignore[no-untyped-def]
    ticket = TicketFactory(subject="Charged twice")
    proposal = triage_ticket_run(ticket_id=ticket.pk, backend=ScriptedBackend(submit(ticket.pk)))
    assert proposal is not None
    evaluation = AgentRun.objects.create(
        purpose=AgentRun.Purpose.EVALUATION,
        workflow="support-triage",
        backend="offline",
        status=AgentRun.Status.FINISHED,
        outcome="proposal",
    )
    return {"production": AgentRun.objects.get(pk=proposal.run_id), "evaluation": evaluation}


def _listed(client: Client, query: str = "") -> list[int]:
    response = client.get(f"/admin/agent/agentrun/{query}")
    assert response.status_code == 200
    return [run.pk for run in response.context["cl"].result_list]


def test_the_run_list_shows_production_runs_unless_asked_for_evaluations(
    client: Client, reviewer, runs
) -> None:  # type: ignore[no-untyped-def]
    client.force_login(reviewer)
    production, evaluation = runs["production"].pk, runs["evaluation"].pk

    assert _listed(client) == [production]
    assert _listed(client, "?purpose=triage") == [production]
    assert _listed(client, "?purpose=evaluation") == [evaluation]
    assert sorted(_listed(client, "?purpose=all")) == sorted([production, evaluation])
    assert _listed(client, "?purpose=bogus") == [production]
    page = client.get("/admin/agent/agentrun/").content.decode()
    assert re.search(r'<li class="selected">\s*<a href="\?purpose=triage">Production', page)
    assert 'href="?purpose=evaluation"' in page


def test_a_runs_page_links_to_its_proposal_not_to_itself(client: Client, reviewer, runs) -> None:  # type: ignore[no-untyped-def]
    run = runs["production"]
    client.force_login(reviewer)

    page = client.get(f"/admin/agent/agentrun/{run.pk}/change/").content.decode()

    assert "viewsitelink" not in page  # "View on site" led back to this very page
    review = f'href="/admin/agent/triageproposal/{run.proposal.pk}/change/"'
    assert f"<a {review}>Proposal for #{run.ticket_id} (pending review)</a>" in page
    evaluation = client.get(f"/admin/agent/agentrun/{runs['evaluation'].pk}/change/")
    assert '/change/">Proposal for' not in evaluation.content.decode()
