"""Re-run triage: a person sends a ticket the agent no longer holds back to it, through the
ordinary enqueue path; permission-checked, kill-switch aware, journaled and traced. Refused,
it writes and queues nothing."""

from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.test import Client

from agent.models import AgentRun, TraceStep, TriageProposal
from agent.rerun import AgentSwitchedOff, RerunRefused, triage_rerun
from agent.review import proposal_approve, proposal_undo
from agent.selectors import Queue, agent_settings_get, tickets_in_queue
from agent.services import triage_ticket_run
from tests.agent.scripted import ScriptedBackend, submit
from tests.agent.test_queues import triaged
from tests.factories import ResolvedTicketFactory, TicketFactory, UserFactory
from tickets.models import ChangeRecord, Ticket
from tickets.roles import SUPPORT_REVIEWERS, TICKET_INTAKE, TRIAGE_ADMINS


def snapshot(ticket: Ticket) -> dict[str, Any]:
    """What a refused re-run must leave as it was."""
    fresh = Ticket.objects.get(pk=ticket.pk)
    return {
        "ticket": (fresh.status, fresh.status_changed_at),
        "proposals": list(TriageProposal.objects.order_by("pk").values_list("pk", "status")),
        "journal": ChangeRecord.objects.count(),
        "steps": TraceStep.objects.count(),
        "runs": AgentRun.objects.count(),
    }


def switch_agent(*, on: bool) -> None:
    agent_settings = agent_settings_get()
    agent_settings.agent_enabled = on
    agent_settings.save()


@pytest.fixture
def undone(history, reviewer) -> Ticket:  # type: ignore[no-untyped-def]
    """A ticket whose approval was undone: in the manual-triage queue."""
    approved = proposal_approve(proposal=triaged("proposal"), reviewer=reviewer)
    return proposal_undo(proposal=approved, reviewer=reviewer).ticket


def test_a_rerun_after_undo_is_queued_journaled_traced_and_triaged_again(
    undone, reviewer, django_capture_on_commit_callbacks, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    old = TriageProposal.objects.get(ticket=undone)
    sent: list[int] = []
    monkeypatch.setattr("agent.services._delay", sent.append)  # the broker

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        ticket = triage_rerun(ticket_id=undone.pk, requested_by=reviewer)

    assert (len(callbacks), sent) == (1, [undone.pk])  # enqueued once, after commit
    assert Ticket.objects.get(pk=undone.pk).status == "queued"
    assert list(tickets_in_queue(queue=Queue.IN_FLIGHT)) == [ticket]  # the sweeper's now
    record = ChangeRecord.objects.filter(ticket=ticket).order_by("-id").first()
    assert record is not None
    assert (record.actor, record.before, record.after, record.reversible) == (
        reviewer,
        {"status": "needs_manual_triage"},
        {"status": "queued"},
        False,
    )
    step = TraceStep.objects.filter(run=old.run, kind="rerun").get()
    assert step.actor == reviewer
    assert step.summary.startswith(f"Triage re-run requested by {reviewer}")
    # The worker picks it up like any queued ticket: a new run, a new pending proposal.
    new = triage_ticket_run(ticket_id=ticket.pk, backend=ScriptedBackend(submit(ticket.pk)))
    assert new is not None
    assert new.pk != old.pk
    assert TriageProposal.objects.get(pk=new.pk).status == "pending"
    assert Ticket.objects.get(pk=ticket.pk).status == "awaiting_review"


def test_a_ticket_that_waited_through_the_kill_switch_is_rerun_in_place_of_its_safe_stop(
    history, reviewer, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    switch_agent(on=False)
    ticket = TicketFactory(subject="Arrived while the agent was off")
    stopped = triage_ticket_run(ticket_id=ticket.pk, backend=ScriptedBackend())
    assert stopped is not None
    assert stopped.outcome == "safe_stop"
    assert ticket in tickets_in_queue(queue=Queue.MANUAL)
    switch_agent(on=True)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        triage_rerun(ticket_id=ticket.pk, requested_by=reviewer)

    stopped.refresh_from_db()
    assert (stopped.status, stopped.reviewed_by) == ("superseded", reviewer)
    assert len(callbacks) == 1
    step = TraceStep.objects.get(run=stopped.run, kind="rerun")
    assert step.payload["superseded_proposal"] == stopped.pk
    new = triage_ticket_run(ticket_id=ticket.pk, backend=ScriptedBackend(submit(ticket.pk)))
    assert new is not None
    assert new.outcome == "proposal"  # one active proposal again: the new one


def test_a_rerun_without_the_permission_writes_and_queues_nothing(
    undone, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_ticket"))
    before = snapshot(undone)

    with (
        django_capture_on_commit_callbacks(execute=False) as callbacks,
        pytest.raises(PermissionDenied),
    ):
        triage_rerun(ticket_id=undone.pk, requested_by=viewer)

    assert callbacks == []
    assert snapshot(undone) == before


def test_a_rerun_while_the_agent_is_switched_off_writes_and_queues_nothing(
    undone, reviewer, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    switch_agent(on=False)
    before = snapshot(undone)

    with (
        django_capture_on_commit_callbacks(execute=False) as callbacks,
        pytest.raises(AgentSwitchedOff, match=r"switched off \(kill switch\)"),
    ):
        triage_rerun(ticket_id=undone.pk, requested_by=reviewer)

    assert callbacks == []
    assert snapshot(undone) == before


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda reviewer: triaged("proposal").ticket, "has a draft awaiting review"),
        (
            lambda reviewer: (
                proposal_approve(proposal=triaged("clarification"), reviewer=reviewer).ticket
            ),
            "approval stands: undo it first",
        ),
        (
            lambda reviewer: (
                proposal_approve(proposal=triaged("proposal"), reviewer=reviewer).ticket
            ),
            "is triaged: undo its approval",
        ),
        (lambda reviewer: TicketFactory(status="queued"), "already with the agent"),
        (lambda reviewer: TicketFactory(status="triaging"), "already with the agent"),
        (lambda reviewer: ResolvedTicketFactory(), "is resolved"),
    ],
    ids=["pending", "approved-clarification", "triaged", "queued", "triaging", "resolved"],
)
def test_a_rerun_of_a_ticket_no_person_holds_is_refused_and_writes_nothing(
    history, reviewer, django_capture_on_commit_callbacks, make, why
) -> None:  # type: ignore[no-untyped-def]
    ticket = make(reviewer)
    before = snapshot(ticket)

    with (
        django_capture_on_commit_callbacks(execute=False) as callbacks,
        pytest.raises(RerunRefused, match=why),
    ):
        triage_rerun(ticket_id=ticket.pk, requested_by=reviewer)

    assert callbacks == []
    assert snapshot(ticket) == before


def test_reviewers_and_triage_admins_may_rerun_and_intake_may_not(db) -> None:  # type: ignore[no-untyped-def]
    def codenames(group: str) -> set[str]:
        return set(Group.objects.get(name=group).permissions.values_list("codename", flat=True))

    assert "rerun_triage" in codenames(SUPPORT_REVIEWERS)
    assert "rerun_triage" in codenames(TRIAGE_ADMINS)
    assert "rerun_triage" not in codenames(TICKET_INTAKE)


# --- the admin ------------------------------------------------------------------------------


def test_the_ticket_page_reruns_triage(
    client: Client, undone, reviewer, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    client.force_login(reviewer)
    url = f"/admin/tickets/ticket/{undone.pk}/change/"
    assert 'id="rerun-triage"' in client.get(url).content.decode()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(f"/admin/tickets/ticket/{undone.pk}/rerun-triage/", follow=True)

    assert response.redirect_chain == [(url, 302)]
    assert "is queued for triage again" in response.content.decode()
    assert len(callbacks) == 1
    assert Ticket.objects.get(pk=undone.pk).status == "queued"


def test_the_ticket_page_offers_no_rerun_without_the_permission(
    client: Client, undone, intake_user, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    client.force_login(intake_user)  # may view tickets, not re-run them
    before = snapshot(undone)
    page = client.get(f"/admin/tickets/ticket/{undone.pk}/change/").content.decode()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(f"/admin/tickets/ticket/{undone.pk}/rerun-triage/")

    assert 'id="rerun-triage"' not in page
    assert response.status_code == 403
    assert callbacks == []
    assert snapshot(undone) == before
    assert client.get(f"/admin/tickets/ticket/{undone.pk}/rerun-triage/").status_code == 405
    # Refused before the lookup: an unknown id answers the same, so ids cannot be probed.
    assert client.post("/admin/tickets/ticket/999999/rerun-triage/").status_code == 403


def test_the_ticket_page_says_when_the_kill_switch_stops_a_rerun(
    client: Client, undone, reviewer, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    switch_agent(on=False)
    client.force_login(reviewer)
    before = snapshot(undone)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(f"/admin/tickets/ticket/{undone.pk}/rerun-triage/", follow=True)

    assert "The agent is switched off (kill switch), so nothing was queued" in (
        response.content.decode()
    )
    assert callbacks == []
    assert snapshot(undone) == before


def test_the_bulk_action_reruns_what_a_person_holds_and_says_what_it_left(
    client: Client, undone, reviewer, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    pending = triaged("clarification").ticket
    client.force_login(reviewer)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            "/admin/tickets/ticket/",
            {"action": "rerun_triage", "_selected_action": [undone.pk, pending.pk]},
            follow=True,
        )

    text = response.content.decode()
    assert f"Queued 1 tickets for triage again: #{undone.pk}" in text
    assert f"Left 1 as they were: #{pending.pk} has a draft awaiting review" in text
    assert len(callbacks) == 1
    assert Ticket.objects.get(pk=undone.pk).status == "queued"
    assert Ticket.objects.get(pk=pending.pk).status == "awaiting_review"


def test_the_bulk_action_under_the_kill_switch_writes_and_queues_nothing(
    client: Client, undone, reviewer, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    switch_agent(on=False)
    client.force_login(reviewer)
    before = snapshot(undone)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            "/admin/tickets/ticket/",
            {"action": "rerun_triage", "_selected_action": [undone.pk]},
            follow=True,
        )

    assert "switched off (kill switch), so nothing was queued" in response.content.decode()
    assert callbacks == []
    assert snapshot(undone) == before


def test_the_bulk_action_is_not_offered_without_the_permission(
    client: Client, undone, intake_user, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    client.force_login(intake_user)
    before = snapshot(undone)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            "/admin/tickets/ticket/",
            {"action": "rerun_triage", "_selected_action": [undone.pk]},
            follow=True,
        )

    assert 'value="rerun_triage"' not in response.content.decode()
    assert callbacks == []
    assert snapshot(undone) == before
