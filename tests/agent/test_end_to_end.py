"""End to end, with real parts: HTTP ingest → Redis → a real Celery worker → the Claude backend
(the real SDK against a local fake Messages API) → PostgreSQL. Proposal stored, trace complete."""

import time

import pytest

from agent.models import TriageProposal
from tests.agent.fake_anthropic import FakeMessagesAPI, submit_triage_reply
from tickets.models import Ticket


@pytest.mark.postgres
@pytest.mark.redis
def test_ingest_to_proposal_with_claude_through_a_real_worker(
    celery_worker,
    intake_api,
    history,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    api = FakeMessagesAPI([submit_triage_reply])
    with api as base_url:
        settings.TRIAGE_AGENT_BACKEND = "anthropic"
        settings.ANTHROPIC_API_KEY = "test-key"
        settings.ANTHROPIC_BASE_URL = base_url
        response = intake_api.post(
            "/api/tickets/",
            {
                "subject": "Charged twice for March",
                "body": "My card ending 4242 was charged twice. Reach me at ana@example.com.",
                "requester_email": "ana@example.com",
            },
        )
        assert response.status_code == 201
        ticket_id = response.json()["id"]
        proposal = _wait_for_proposal(ticket_id)

    assert (proposal.outcome, proposal.category.slug, proposal.urgency) == (
        "proposal",
        "billing",
        "high",
    )
    assert Ticket.objects.get(pk=ticket_id).status == Ticket.Status.AWAITING_REVIEW
    run = proposal.run
    assert (run.backend, run.model, run.status) == ("anthropic", "claude-haiku-4-5", "finished")
    assert (run.input_tokens, run.output_tokens, run.cache_read_tokens) == (1200, 90, 3000)
    assert run.cost_usd > 0
    kinds = list(run.steps.order_by("position").values_list("kind", flat=True))
    assert kinds[:4] == ["intent", "policy_decision", "context_source", "tool_result"]
    assert kinds[-4:] == ["policy_decision", "tool_call", "tool_result", "output"]
    assert "model_request" in kinds
    assert "model_response" in kinds
    # What the model was sent: masked ticket, the tools, the cached static prefix.
    [sent] = api.requests
    body = sent.body
    assert sent.headers["authorization"] == "Bearer test-key"
    assert body["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert {tool["name"] for tool in body["tools"]} >= {"get_ticket", "submit_triage", "decline"}
    assert "ana@example.com" not in str(body["messages"])
    assert "[REDACTED:email]" in str(body["messages"])


def _wait_for_proposal(ticket_id: int, timeout: float = 30) -> TriageProposal:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proposal = TriageProposal.objects.filter(ticket_id=ticket_id).first()
        if proposal is not None:
            return proposal
        time.sleep(0.1)
    raise AssertionError(f"no proposal for ticket {ticket_id} within {timeout}s")
