"""The clarification question, ready to use: copied by the reviewer, sent through their own
helpdesk, and recorded on the ticket as sent (the app sends nothing)."""

import pytest
from django.test import Client

from agent.claims import proposal_claim
from agent.clarifications import clarification_mark_sent
from agent.models import TraceStep, TriageProposal
from agent.review import ReviewConflict, proposal_approve, proposal_reject
from agent.services import triage_ticket_run
from tests.agent.scripted import ScriptedBackend, submit
from tests.agent.test_queues import clarify
from tests.factories import TicketFactory, UserFactory
from tickets.models import ChangeRecord, TicketNote


def triaged(step) -> TriageProposal:  # type: ignore[no-untyped-def]
    ticket = TicketFactory(subject="It does not work")
    proposal = triage_ticket_run(ticket_id=ticket.pk, backend=ScriptedBackend(step(ticket.pk)))
    assert proposal is not None
    return proposal


def test_marking_the_question_sent_records_it_on_the_ticket(history, reviewer) -> None:  # type: ignore[no-untyped-def]
    proposal = triaged(clarify)

    marked = clarification_mark_sent(proposal=proposal, reviewer=reviewer)

    assert (marked.question_sent_by, marked.status) == (reviewer, "pending")
    note = TicketNote.objects.get(ticket_id=proposal.ticket_id)
    assert note.body == (
        f"Clarification question sent to the customer by {reviewer} through our helpdesk: "
        "Which invoice?"
    )
    assert (note.author, note.source) == (reviewer, "staff")
    record = ChangeRecord.objects.get(ticket_id=proposal.ticket_id)
    assert (record.target, record.target_id, record.actor, record.reversible) == (
        "tickets.TicketNote",
        note.pk,
        reviewer,
        False,
    )
    step = TraceStep.objects.get(run=proposal.run, kind="question_sent")
    assert step.actor == reviewer
    assert step.payload == {"question": "Which invoice?", "note": note.pk}


def test_an_approved_clarification_may_be_marked_once(history, reviewer) -> None:  # type: ignore[no-untyped-def]
    approved = proposal_approve(proposal=triaged(clarify), reviewer=reviewer)
    clarification_mark_sent(proposal=approved, reviewer=reviewer)
    notes = TicketNote.objects.filter(ticket_id=approved.ticket_id).count()

    with pytest.raises(ReviewConflict, match="already marked the question sent"):
        clarification_mark_sent(proposal=approved, reviewer=reviewer)

    assert TicketNote.objects.filter(ticket_id=approved.ticket_id).count() == notes
    assert TraceStep.objects.filter(run=approved.run, kind="question_sent").count() == 1


@pytest.mark.parametrize("case", ["proposal", "rejected", "claimed by another"])
def test_what_cannot_be_marked_sent_writes_nothing(history, reviewer, case: str) -> None:  # type: ignore[no-untyped-def]
    if case == "proposal":
        proposal = triaged(lambda pk: submit(pk, urgency="high"))
    else:
        proposal = triaged(clarify)
    if case == "rejected":
        proposal_reject(proposal=proposal, reviewer=reviewer, reason="Wrong question.")
    if case == "claimed by another":
        other = UserFactory(is_superuser=True, is_staff=True)
        proposal_claim(proposal=proposal, reviewer=other)
    notes_before = TicketNote.objects.filter(ticket_id=proposal.ticket_id).count()

    with pytest.raises(ReviewConflict):
        clarification_mark_sent(proposal=proposal, reviewer=reviewer)

    proposal.refresh_from_db()
    assert proposal.question_sent_at is None
    assert TicketNote.objects.filter(ticket_id=proposal.ticket_id).count() == notes_before
    assert not TraceStep.objects.filter(kind="question_sent").exists()


def test_the_review_page_copies_and_marks_the_question(client: Client, history, reviewer) -> None:  # type: ignore[no-untyped-def]
    proposal = triaged(clarify)
    url = f"/admin/agent/triageproposal/{proposal.pk}/change/"
    client.force_login(reviewer)

    before = client.get(url).content.decode()
    after = client.post(url, {"action": "mark_sent"}, follow=True).content.decode()

    assert '<pre id="clarification-question">Which invoice?</pre>' in before
    assert 'data-copy="clarification-question"' in before
    assert 'id="mark-sent"' in before
    assert f"Recorded that you sent ticket #{proposal.ticket_id}&#x27;s question." in after
    assert 'id="mark-sent"' not in after
    assert f"Sent by {reviewer}" in after
