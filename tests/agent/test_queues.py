"""Every ticket waits somewhere: whatever the services do to it, a ticket is in the review
queue, the manual-triage queue, with the agent (which the sweeper recovers), or done."""

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from agent.models import TriageProposal
from agent.rerun import triage_rerun
from agent.review import ProposalEdits, proposal_approve, proposal_reject, proposal_undo
from agent.selectors import (
    DONE_STATUSES,
    IN_FLIGHT_STATUSES,
    Queue,
    agent_settings_get,
    proposal_list,
    tickets_in_queue,
)
from agent.services import tickets_requeue_stale, triage_enqueue, triage_ticket_run
from tests.agent.scripted import ScriptedBackend, submit, tool_use, turn
from tests.factories import TicketFactory
from tickets.models import Ticket
from tickets.services import ticket_claim_for_triage, ticket_ingest, ticket_record_history

IN_FLIGHT_AND_DONE = {*IN_FLIGHT_STATUSES, *DONE_STATUSES}
State = tuple[str, str, str]  # ticket status, newest proposal's outcome, its review state


def clarify(ticket_id: int):  # type: ignore[no-untyped-def]
    arguments = {"ticket_id": ticket_id, "question": "Which invoice?", "missing": ["invoice"]}
    return turn(tool_use("request_clarification", arguments))


def decline(ticket_id: int):  # type: ignore[no-untyped-def]
    arguments = {"ticket_id": ticket_id, "reason": "Asks us to pay.", "kind": "out_of_scope_action"}
    return turn(tool_use("decline", arguments))


def exhaust(ticket_id: int):  # type: ignore[no-untyped-def]
    """Eight turns that never finish: the step limit ends the run in a safe stop."""
    return [turn(tool_use("list_reply_templates", {}))] * 8


TURNS: dict[str, Callable[[int], object]] = {
    "proposal": lambda pk: [submit(pk, urgency="high")],
    "clarification": lambda pk: [clarify(pk)],
    "refusal": lambda pk: [decline(pk)],
    "safe_stop": exhaust,
}


def triaged(outcome: str) -> TriageProposal:
    ticket = TicketFactory(subject=f"A ticket for a {outcome}")
    proposal = triage_ticket_run(
        ticket_id=ticket.pk, backend=ScriptedBackend(*TURNS[outcome](ticket.pk))
    )
    assert proposal is not None
    assert proposal.outcome == outcome
    return proposal


def came_in_while_switched_off() -> Ticket:
    """A ticket triaged while the kill switch was off: a safe stop, no model call."""
    settings_row = agent_settings_get()
    settings_row.agent_enabled = False
    settings_row.save()
    ticket = TicketFactory(subject="Came in while the agent was off")
    stopped = triage_ticket_run(ticket_id=ticket.pk, backend=ScriptedBackend())
    assert stopped is not None
    assert stopped.error == "the agent is switched off (kill switch)"
    settings_row.agent_enabled = True
    settings_row.save()
    return ticket


def state(ticket: Ticket) -> State:
    ticket.refresh_from_db()
    newest = ticket.proposals.order_by("-created_at", "-id").first()
    if newest is None:
        return (ticket.status, "-", "-")
    return (ticket.status, newest.outcome, newest.status)


def queues_showing(ticket: Ticket) -> set[str]:
    """The queues that list the ticket, each read as its page reads it: the review queue lists
    pending proposals (admin and API), the manual-triage queue is the ticket list's filter, and
    tickets with the agent are those the sweeper requeues once they wait too long."""
    shown = set()
    if proposal_list(status=TriageProposal.Status.PENDING).filter(ticket=ticket).exists():
        shown.add(Queue.REVIEW.value)
    for queue in (Queue.MANUAL, Queue.IN_FLIGHT, Queue.DONE):
        if tickets_in_queue(queue=queue).filter(pk=ticket.pk).exists():
            shown.add(queue.value)
    return shown


def reach_every_state(reviewer, django_capture_on_commit_callbacks, monkeypatch) -> list[Ticket]:  # type: ignore[no-untyped-def]
    """Drives tickets through every path the services offer; returns one ticket per path."""
    tickets: list[Ticket] = []
    with django_capture_on_commit_callbacks(execute=False):  # ingested, not yet queued
        tickets.append(
            ticket_ingest(subject="Just in", body="Hello.", requester_email="a@example.com").ticket
        )
    queued = TicketFactory(subject="Queued")
    monkeypatch.setattr("agent.services._delay", lambda ticket_id: None)  # the broker took it
    with django_capture_on_commit_callbacks(execute=True):
        triage_enqueue(ticket_id=queued.pk)
    monkeypatch.undo()
    claimed = TicketFactory(subject="Being triaged")
    assert ticket_claim_for_triage(ticket_id=claimed.pk, stale_before=timezone.now())
    crashed = TicketFactory(subject="Its run crashed")

    def explode(request):  # type: ignore[no-untyped-def]
        raise KeyError("bug in a backend")

    with pytest.raises(KeyError):
        triage_ticket_run(ticket_id=crashed.pk, backend=ScriptedBackend(explode))
    tickets += [queued, claimed, crashed]

    for outcome in TURNS:  # pending review
        tickets.append(triaged(outcome).ticket)
    tickets.append(came_in_while_switched_off())

    for outcome in ("proposal", "clarification", "refusal"):  # approved as they are
        tickets.append(proposal_approve(proposal=triaged(outcome), reviewer=reviewer).ticket)
    edited = proposal_approve(
        proposal=triaged("proposal"), reviewer=reviewer, edits=ProposalEdits(urgency="low")
    )
    labelled = proposal_approve(
        proposal=triaged("clarification"),
        reviewer=reviewer,
        edits=ProposalEdits(category=edited.category, urgency="normal"),
    )
    tickets += [edited.ticket, labelled.ticket]
    for outcome in TURNS:  # rejected (a safe stop: taken over)
        rejected = proposal_reject(proposal=triaged(outcome), reviewer=reviewer, reason="No.")
        tickets.append(rejected.ticket)
    for outcome in ("proposal", "clarification", "refusal"):  # approved, then undone
        approved = proposal_approve(proposal=triaged(outcome), reviewer=reviewer)
        tickets.append(proposal_undo(proposal=approved, reviewer=reviewer).ticket)
    # Sent back to the agent by a person (after an undo, a rejection, a kill-switch safe
    # stop), and one so sent that the agent has triaged again.
    undone = proposal_approve(proposal=triaged("proposal"), reviewer=reviewer)
    sent_back = [
        proposal_undo(proposal=undone, reviewer=reviewer).ticket,
        proposal_reject(proposal=triaged("refusal"), reviewer=reviewer, reason="No.").ticket,
        came_in_while_switched_off(),
    ]
    for ticket in sent_back:
        triage_rerun(ticket_id=ticket.pk, requested_by=reviewer)
    again = proposal_reject(proposal=triaged("proposal"), reviewer=reviewer, reason="No.").ticket
    triage_rerun(ticket_id=again.pk, requested_by=reviewer)
    assert triage_ticket_run(ticket_id=again.pk, backend=ScriptedBackend(clarify(again.pk)))
    tickets += [*sent_back, again]
    tickets.append(
        ticket_record_history(
            external_id="history-1",
            subject="Old and done",
            body="Resolved long ago.",
            requester_email="b@example.com",
            category=edited.category,  # type: ignore[arg-type]
            urgency="normal",
        ).ticket
    )
    return tickets


# Every (status, newest proposal) the services can leave a ticket in, and where it waits.
REACHABLE: dict[State, set[str]] = {
    ("new", "-", "-"): {"in_flight"},
    ("queued", "-", "-"): {"in_flight"},
    ("triaging", "-", "-"): {"in_flight"},
    ("awaiting_review", "proposal", "pending"): {"review"},
    ("awaiting_review", "clarification", "pending"): {"review"},
    ("needs_manual_triage", "refusal", "pending"): {"review"},
    ("needs_manual_triage", "safe_stop", "pending"): {"review", "manual"},
    ("triaged", "proposal", "approved"): {"done"},
    ("triaged", "proposal", "edited"): {"done"},
    ("triaged", "clarification", "edited"): {"done"},
    ("needs_manual_triage", "clarification", "approved"): {"manual"},
    ("needs_manual_triage", "refusal", "approved"): {"manual"},
    ("needs_manual_triage", "proposal", "rejected"): {"manual"},
    ("needs_manual_triage", "clarification", "rejected"): {"manual"},
    ("needs_manual_triage", "refusal", "rejected"): {"manual"},
    ("needs_manual_triage", "safe_stop", "rejected"): {"manual"},
    ("needs_manual_triage", "proposal", "undone"): {"manual"},
    ("needs_manual_triage", "clarification", "undone"): {"manual"},
    ("needs_manual_triage", "refusal", "undone"): {"manual"},
    ("queued", "proposal", "undone"): {"in_flight"},
    ("queued", "refusal", "rejected"): {"in_flight"},
    ("queued", "safe_stop", "superseded"): {"in_flight"},
    ("resolved", "-", "-"): {"done"},
}


def test_every_reachable_ticket_state_is_in_a_queue(
    history, reviewer, django_capture_on_commit_callbacks, monkeypatch, settings
) -> None:  # type: ignore[no-untyped-def]
    tickets = reach_every_state(reviewer, django_capture_on_commit_callbacks, monkeypatch)

    reached = {state(ticket): queues_showing(ticket) for ticket in tickets}

    assert set(reached) == set(REACHABLE)  # the enumeration is complete: no path left out
    for ticket_state, queues in reached.items():
        assert queues, f"{ticket_state} is in no queue"
        assert queues == REACHABLE[ticket_state], ticket_state
    done = [t for t in tickets if "done" in queues_showing(t)]
    assert all(t.status in DONE_STATUSES and t.category_id and t.urgency for t in done)
    # "With the agent" is honest only if the sweeper really takes those tickets back.
    with_agent = [t.pk for t in tickets if queues_showing(t) == {"in_flight"}]
    monkeypatch.setattr("agent.services._delay", lambda ticket_id: None)
    later = timezone.now() + timedelta(seconds=settings.TRIAGE_STALE_AFTER_SECONDS + 5)
    monkeypatch.setattr(timezone, "now", lambda: later)
    assert sorted(tickets_requeue_stale()) == sorted(with_agent)


def test_undo_sends_the_ticket_to_manual_triage(history, reviewer) -> None:  # type: ignore[no-untyped-def]
    """Undone, the proposal awaits nothing: the ticket must not say it awaits review."""
    approved = proposal_approve(proposal=triaged("proposal"), reviewer=reviewer)

    undone = proposal_undo(proposal=approved, reviewer=reviewer)

    ticket = Ticket.objects.get(pk=undone.ticket_id)
    assert (ticket.status, ticket.category, ticket.urgency) == ("needs_manual_triage", None, "")
    assert list(tickets_in_queue(queue=Queue.MANUAL)) == [ticket]
    move = ticket.changes.order_by("-id").first()
    assert move is not None
    assert (move.before["status"], move.after["status"], move.reversible, move.actor) == (
        "awaiting_review",
        "needs_manual_triage",
        False,
        reviewer,
    )


def test_the_ticket_list_filters_the_manual_triage_queue(client: Client, history, reviewer) -> None:  # type: ignore[no-untyped-def]
    undone = proposal_undo(
        proposal=proposal_approve(proposal=triaged("proposal"), reviewer=reviewer),
        reviewer=reviewer,
    )
    pending = triaged("clarification")
    client.force_login(reviewer)

    page = client.get("/admin/tickets/ticket/?queue=manual").content.decode()

    assert "Manual triage: tickets that need a person" in page
    assert undone.ticket.subject in page
    assert "Proposal · approval undone" in page  # why it is here
    assert pending.ticket.subject not in page  # its draft is in the review queue


# --- every combination, reachable or not -----------------------------------------------------

CLAIMS = ("unclaimed", "claimed", "claim lapsed")


def _stored(ticket_status: str, proposal: tuple[str, str, str] | None, category) -> Ticket:  # type: ignore[no-untyped-def]
    """A ticket written straight to the database in ``ticket_status`` with, if given, one
    proposal (outcome, review state, claim), bypassing the services: the rows a bug, a
    migration or a hand edit could leave."""
    labelled = ticket_status in DONE_STATUSES
    ticket = TicketFactory(
        status=ticket_status,
        category=category if labelled else None,
        urgency="normal" if labelled else "",
    )
    if proposal is None:
        return ticket
    outcome, review_state, claim = proposal
    from agent.models import AgentRun

    run = AgentRun.objects.create(
        ticket=ticket, workflow="support-triage", backend="scripted", status="finished",
        outcome=outcome,
    )  # fmt: skip
    claimed_at = {
        "unclaimed": None,
        "claimed": timezone.now(),
        "claim lapsed": timezone.now() - timedelta(hours=1),
    }[claim]
    TriageProposal.objects.create(
        ticket=ticket,
        run=run,
        outcome=outcome,
        status=review_state,
        category=category if outcome == "proposal" else None,
        urgency="high" if outcome == "proposal" else "",
        confidence="high" if outcome == "proposal" else "",
        clarification_question="Which invoice?" if outcome == "clarification" else "",
        claimed_by=_claimer() if claimed_at else None,
        claimed_at=claimed_at,
    )
    return ticket


def _claimer():  # type: ignore[no-untyped-def]
    from tests.factories import UserFactory

    return UserFactory(username="claimer", is_staff=True, is_superuser=True)


def _combinations() -> list[tuple[str, tuple[str, str, str] | None]]:
    """Every ticket status, with no proposal or with one of every outcome in every review state
    (and a pending one unclaimed, claimed by someone, or with a lapsed claim)."""
    from agent.models import Outcome

    proposals: list[tuple[str, str, str] | None] = [None]
    for outcome in Outcome.values:
        for review_state in TriageProposal.Status.values:
            claims = CLAIMS if review_state == TriageProposal.Status.PENDING else CLAIMS[:1]
            proposals += [(outcome, review_state, claim) for claim in claims]
    return [(status, proposal) for status in Ticket.Status.values for proposal in proposals]


def _listed(user, url: str) -> set[int]:  # type: ignore[no-untyped-def]
    """The ticket ids a queue's admin page lists (its changelist queryset, every page)."""
    from django.contrib import admin
    from django.test import RequestFactory

    from tickets.models import Ticket as TicketModel

    request = RequestFactory().get(url)
    request.user = user
    if url.startswith("/admin/agent/triageproposal/"):
        model_admin = admin.site._registry[TriageProposal]
        changelist = model_admin.get_changelist_instance(request)
        return set(changelist.queryset.values_list("ticket_id", flat=True))
    model_admin = admin.site._registry[TicketModel]
    changelist = model_admin.get_changelist_instance(request)
    return set(changelist.queryset.values_list("pk", flat=True))


def test_every_ticket_status_and_proposal_state_is_shown_by_a_queue(history, reviewer) -> None:  # type: ignore[no-untyped-def]
    """Whatever the rows say, a ticket is listed: a ticket a person must act on (not with the
    agent, not done) by the review queue or the manual-triage queue, as their pages list
    them, and every other by the ticket list's *with the agent* or *done* filter. A claim,
    live or lapsed, hides nothing."""
    stored = {
        (status, proposal): _stored(status, proposal, history["billing"])
        for status, proposal in _combinations()
    }
    listed = {
        queue: _listed(reviewer, url)
        for queue, url in {
            "review": "/admin/agent/triageproposal/?status__exact=pending",
            "manual": "/admin/tickets/ticket/?queue=manual",
            "in_flight": "/admin/tickets/ticket/?queue=in_flight",
            "done": "/admin/tickets/ticket/?queue=done",
        }.items()
    }

    assert len(stored) == 7 * (1 + 4 * (6 + 2))  # statuses x (none + outcomes x states)
    unlisted, stranded = [], []
    for combination, ticket in stored.items():
        shown = {queue for queue, ids in listed.items() if ticket.pk in ids}
        if not shown:
            unlisted.append(combination)
        needs_a_person = combination[0] not in IN_FLIGHT_AND_DONE
        if needs_a_person and not shown & {"review", "manual"}:
            stranded.append(combination)
        if combination[1] and combination[1][1] == "pending":  # a draft to decide on
            assert shown & {"review", "manual"}, combination
    assert unlisted == []
    assert stranded == []
