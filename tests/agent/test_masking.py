"""Redaction at its choke points: every tool result where it enters the conversation, every
model- or ticket-derived text where it is persisted (proposal, run error, evaluation snapshot),
whatever a tool or the model did."""

import json
from typing import Any

import pytest

from agent.engine.backends.base import ModelRequest, ModelTurn, PermanentModelError
from agent.models import AgentRun, TraceStep, TriageProposal
from agent.review import ProposalEdits, proposal_approve, proposal_reject
from agent.services import triage_ticket_run
from evaluations.models import EvaluationExample
from tests.agent.scripted import ScriptedBackend, submit, tool_use, turn
from tests.factories import (
    ReplyTemplateFactory,
    ResolvedTicketFactory,
    TicketFactory,
    TicketNoteFactory,
)
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


def _result_of(request: ModelRequest, tool_use_id: str) -> Any:
    """The content of one tool result in what the model was sent, parsed."""
    for message in request.messages:
        for block in message["content"]:
            if block.get("tool_use_id") == tool_use_id:
                return json.loads(block["content"])
    raise AssertionError(f"no result for {tool_use_id}")


def _submit_the_draft(ticket_id: int):  # type: ignore[no-untyped-def]
    """A model that submits the draft tool's result as its note, as a model does."""

    def step(request: ModelRequest) -> ModelTurn:
        return submit(ticket_id, draft_note=_result_of(request, "toolu_draft")["draft"])

    return step


def test_a_draft_addresses_the_customer_for_staff_while_the_model_and_trace_see_masks(
    reviewer, history
) -> None:  # type: ignore[no-untyped-def]
    """Issue 11, defect 4: the note staff review and publish names the customer as staff may
    see them; the model's requests and the trace keep the masked form."""
    ticket = TicketFactory(
        subject=f"Sign-in for {EMAIL}", body="I cannot sign in.", requester_email=EMAIL
    )
    template = ReplyTemplateFactory(
        category=history["login"], body="{customer_email} cannot sign in ({subject}, {ticket_ref})."
    )
    draft = {"ticket_id": ticket.pk, "template_id": template.pk}
    backend = ScriptedBackend(
        turn(tool_use("draft_reply", draft, id="toolu_draft")), _submit_the_draft(ticket.pk)
    )

    proposal = triage_ticket_run(ticket_id=ticket.pk, backend=backend)

    staff_note = f"{EMAIL} cannot sign in (Sign-in for {EMAIL}, #{ticket.pk})."
    assert proposal is not None
    assert proposal.draft_note == staff_note
    approved = proposal_approve(proposal=proposal, reviewer=reviewer)
    assert approved.published_note is not None
    assert approved.published_note.body == staff_note
    # The model saw the placeholders and the masked address, never the address.
    drafted = _result_of(backend.requests[1], "toolu_draft")["draft"]
    assert drafted == f"{{customer_email}} cannot sign in ({{subject}}, #{ticket.pk})."
    assert _result_of(backend.requests[0], "context_ticket")["requester"] == "[REDACTED:email]"
    assert EMAIL not in repr([request.messages for request in backend.requests])
    steps = repr(list(TraceStep.objects.filter(run__ticket=ticket).values("summary", "payload")))
    assert EMAIL not in steps
    assert "[REDACTED:email]" in steps
    assert EMAIL not in repr(list(AgentRun.objects.filter(ticket=ticket).values()))


def test_the_offline_draft_names_the_customers_address(new_ticket: Ticket) -> None:
    """The offline backend drafts from the billing template (``{customer_email}`` and
    ``{subject}``): the stored draft has the address, not its mask."""
    proposal = triage_ticket_run(ticket_id=new_ticket.pk)

    assert proposal is not None
    assert proposal.outcome == "proposal"
    assert f"Customer {new_ticket.requester_email} wrote about {new_ticket.subject}" in (
        proposal.draft_note
    )
    assert "[REDACTED:" not in proposal.draft_note
    assert new_ticket.requester_email not in repr(
        list(TraceStep.objects.filter(run__ticket=new_ticket).values("summary", "payload"))
    )


def test_a_published_note_returns_to_the_model_masked_as_a_resolution_note(history) -> None:  # type: ignore[no-untyped-def]
    """A note staff published with the customer's address and phone comes back, as a similar
    ticket's resolution note, masked in the model's context, the trace and the proposal."""
    resolved = ResolvedTicketFactory(
        subject="Charged twice for the April invoice",
        body="My card was charged twice for the April invoice.",
        category=history["billing"],
    )
    TicketNoteFactory(ticket=resolved, body=f"Refunded {EMAIL}; call +44 20 7946 0958 if not.")
    ticket = TicketFactory(subject="Charged twice for the April invoice", body="Charged twice.")
    backend = ScriptedBackend(submit(ticket.pk))

    proposal = triage_ticket_run(ticket_id=ticket.pk, backend=backend)

    similar = _result_of(backend.requests[0], "context_similar")["tickets"]
    note = next(row["resolution_note"] for row in similar if row["ticket_id"] == resolved.pk)
    assert note == "Refunded [REDACTED:email]; call [REDACTED:phone] if not."
    assert proposal is not None
    for secret in (EMAIL, "7946 0958"):
        assert secret not in repr([request.messages for request in backend.requests])
        assert secret not in _stored_text(ticket)


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
