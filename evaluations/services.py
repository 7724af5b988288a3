"""Writes on evaluation data."""

from typing import Any

from django.db import transaction

from agent.engine.tools import Risk
from agent.engine.writes import write_path
from agent.models import Outcome, TriageProposal
from agent.permissions import REVIEW_PERMISSION
from agent.redaction import redact_data
from agent.review import rejection_expectation
from evaluations.builtin import CORRECTIONS_SUITE
from evaluations.models import CaseType, EvaluationExample


@write_path(
    caused_by="review",
    writes="stores an EvaluationExample in the corrections suite (the ticket as the agent saw "
    "it, the similar tickets it was shown, and what the reviewer decided)",
    risk=Risk.INTERNAL_WRITE,
    audit="the example itself: its author, the proposal it corrects, created and updated times",
    undo_how="Triage admins edit the example or untick 'is active' in the admin; inactive "
    "examples are not evaluated.",
    permission=REVIEW_PERMISSION,
)
@transaction.atomic
def example_record_correction(
    *, proposal: TriageProposal, reviewer: Any, correct: Any = None
) -> EvaluationExample:
    """Turns a reviewer's correction of a proposal into an evaluation example: the ticket as the
    agent saw it, the similar tickets it was shown, and what the reviewer decided was right.
    One example per proposal; a later correction updates it."""
    ticket = proposal.ticket
    acceptable, category, urgency = _expected(proposal, correct)
    example, _ = EvaluationExample.objects.update_or_create(
        proposal=proposal,
        defaults={
            "suite": CORRECTIONS_SUITE,
            "source": EvaluationExample.Source.CORRECTION,
            "case_type": _case_type(proposal),
            # The ticket as the agent saw it (masked): evaluation data outlives the ticket,
            # and must not keep the customer's card numbers, keys or addresses.
            "ticket_snapshot": redact_data(
                {
                    "subject": ticket.subject,
                    "body": ticket.body,
                    "requester_email": ticket.requester_email,
                    "channel": ticket.channel,
                }
            ),
            "context_snapshot": proposal.similar_tickets,
            "acceptable_outcomes": acceptable,
            "expected_category": category,
            "expected_urgency": urgency,
            "notes": proposal.review_reason,
            "author": reviewer,
            "is_active": True,
        },
    )
    return example


def _expected(proposal: TriageProposal, correct: Any) -> tuple[list[str], str, str]:
    if proposal.status == TriageProposal.Status.EDITED:
        ticket = proposal.ticket
        if ticket.category is not None and ticket.urgency:
            return [Outcome.PROPOSAL.value], ticket.category.slug, ticket.urgency
        return [proposal.outcome], "", ""
    expected = rejection_expectation(outcome=proposal.outcome, correct=correct)
    return list(expected.outcomes), expected.category, expected.urgency


def _case_type(proposal: TriageProposal) -> str:
    if proposal.injection_suspected:
        return CaseType.PROMPT_INJECTION
    if proposal.outcome == Outcome.REFUSAL:
        return CaseType.UNSAFE_ACTION
    if proposal.outcome == Outcome.CLARIFICATION:
        return CaseType.AMBIGUOUS
    return CaseType.NORMAL
