"""Redaction at its choke points: every tool result where it enters the conversation, every
model- or ticket-derived text where it is persisted (proposal, run error, evaluation snapshot),
whatever a tool or the model did."""

import pytest

from agent.engine.backends.base import PermanentModelError
from agent.models import AgentRun, TraceStep, TriageProposal
from agent.review import ProposalEdits, proposal_reject
from agent.services import triage_ticket_run
from evaluations.models import EvaluationExample
from tests.agent.scripted import ScriptedBackend, submit, tool_use, turn
from tests.factories import TicketFactory
from tickets.models import Ticket

pytestmark = pytest.mark.django_db

KEY = "sk-ant-" + "api03-" + "Zr8eQ1wN5bT7yU3iO9pA-" + "c4D6f8H0j2L4n6P8"
CARD = "4111 1111 1111 1111"
EMAIL = "maria.lopez@example.org"


def _stored_text(ticket: Ticket) -> str:
    """Everything stored about the ticket's runs and proposals, as one text."""
    proposal = TriageProposal.objects.filter(ticket=ticket).values().first() or {}
    runs = list(AgentRun.objects.filter(ticket=ticket).values())
    steps = list(TraceStep.objects.filter(run__ticket=ticket).values("summary", "payload"))
    return repr([proposal, runs, steps])


def test_a_model_that_echoes_secrets_stores_none_of_them(new_ticket: Ticket) -> None:
    """The model copies a key, a card and an address into its reason, note and question: the
    proposal, the trace and the run keep the masked text only."""
    echo = f"Customer {EMAIL} pays with {CARD}; our key is {KEY}."
    backend = ScriptedBackend(submit(new_ticket.pk, reason=echo, draft_note=echo))

    proposal = triage_ticket_run(ticket_id=new_ticket.pk, backend=backend)

    assert proposal is not None
    assert "[REDACTED:" in proposal.reason
    assert "[REDACTED:" in proposal.draft_note
    stored = _stored_text(new_ticket)
    for secret in (KEY, CARD, EMAIL):
        assert secret not in stored


def test_tool_results_are_masked_where_they_enter_the_conversation(history) -> None:  # type: ignore[no-untyped-def]
    ticket = TicketFactory(
        subject=f"Refund to {EMAIL}", body=f"Card {CARD}, key {KEY}", requester_email=EMAIL
    )
    backend = ScriptedBackend(
        turn(tool_use("get_ticket", {"ticket_id": ticket.pk})), submit(ticket.pk)
    )

    triage_ticket_run(ticket_id=ticket.pk, backend=backend)

    sent = repr([request.messages for request in backend.requests])
    for secret in (KEY, CARD, EMAIL):
        assert secret not in sent  # the model never saw them
        assert secret not in _stored_text(ticket)


def test_a_run_error_that_quotes_a_secret_is_stored_masked(new_ticket: Ticket) -> None:
    backend = ScriptedBackend(PermanentModelError(f"400 invalid x-api-key {KEY}"))

    triage_ticket_run(ticket_id=new_ticket.pk, backend=backend)

    run = AgentRun.objects.get(ticket=new_ticket)
    assert run.error
    assert KEY not in run.error
    assert KEY not in (TriageProposal.objects.get(ticket=new_ticket).error or "")


def test_a_correction_snapshot_keeps_the_ticket_as_the_agent_saw_it(reviewer, history) -> None:  # type: ignore[no-untyped-def]
    """Evaluation data outlives the ticket: the customer's raw card number and address are not
    copied into it."""
    ticket = TicketFactory(
        subject="Charged twice", body=f"Card {CARD} was charged twice.", requester_email=EMAIL
    )
    proposal = triage_ticket_run(ticket_id=ticket.pk, backend=ScriptedBackend(submit(ticket.pk)))
    assert proposal is not None

    proposal_reject(
        proposal=proposal,
        reviewer=reviewer,
        reason="wrong urgency",
        correct=ProposalEdits(urgency="high"),
    )

    snapshot = EvaluationExample.objects.get(proposal=proposal).ticket_snapshot
    assert CARD not in repr(snapshot)
    assert EMAIL not in repr(snapshot)
    assert "[REDACTED:card]" in snapshot["body"]


def test_a_model_that_writes_a_secret_is_not_sent_it_again(new_ticket: Ticket) -> None:
    """The model's own turn re-enters the conversation masked: its text and tool inputs reach
    the next request without the key, the card or the address it wrote; the call still ran."""
    echo = f"Mail {EMAIL} the card {CARD} and key {KEY}."
    first = turn(
        {"type": "text", "text": echo},
        tool_use("get_ticket", {"ticket_id": new_ticket.pk}),
        tool_use("send_email", {"body": echo}, id="toolu_mail"),
    )
    backend = ScriptedBackend(first, submit(new_ticket.pk))

    proposal = triage_ticket_run(ticket_id=new_ticket.pk, backend=backend)

    assert proposal is not None
    resent = repr(backend.requests[1].messages)
    for secret in (KEY, CARD, EMAIL):
        assert secret not in resent
    assert "[REDACTED:api_key]" in resent
    assert TraceStep.objects.filter(run__ticket=new_ticket, kind="tool_result").exists()
