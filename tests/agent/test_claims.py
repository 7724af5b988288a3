"""Claims: who works on a proposal, for how long; another reviewer acts only after taking it
over (traced and logged); acting ends the claim; the queue, the page and the API say who has
it."""

import logging
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from agent.claims import ClaimHeld, proposal_claim, proposal_release
from agent.models import TraceStep, TriageProposal
from agent.review import ProposalEdits, ReviewConflict, proposal_approve, proposal_reject
from agent.selectors import claim_holder
from agent.services import triage_ticket_run
from evaluations.models import EvaluationExample
from tests.agent.scripted import ScriptedBackend, submit
from tests.conftest import token_client
from tests.factories import TicketFactory, UserFactory
from tickets.models import ChangeRecord, Ticket, TicketNote
from tickets.roles import SUPPORT_REVIEWERS


@pytest.fixture
def other_reviewer(db):  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Group

    user = UserFactory(username="sam", is_staff=True)
    user.groups.add(Group.objects.get(name=SUPPORT_REVIEWERS))
    return user


def pending(subject: str = "Charged twice this month") -> TriageProposal:
    ticket = TicketFactory(subject=subject)
    proposal = triage_ticket_run(
        ticket_id=ticket.pk, backend=ScriptedBackend(submit(ticket.pk, urgency="high"))
    )
    assert proposal is not None
    return proposal


def later(monkeypatch: pytest.MonkeyPatch, minutes: float) -> None:
    moment = timezone.now() + timedelta(minutes=minutes)
    monkeypatch.setattr(timezone, "now", lambda: moment)


def test_a_claim_holds_for_the_setting_then_lapses(
    history, reviewer, monkeypatch, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.TRIAGE_CLAIM_MINUTES = 10
    proposal = proposal_claim(proposal=pending(), reviewer=reviewer)

    assert claim_holder(proposal=proposal) == reviewer
    step = TraceStep.objects.get(run=proposal.run, kind="claim")
    assert (step.summary, step.actor) == (f"Claimed by {reviewer}", reviewer)
    later(monkeypatch, 9.9)
    assert claim_holder(proposal=proposal) == reviewer
    later(monkeypatch, 10.1)
    assert claim_holder(proposal=proposal) is None


def test_another_reviewers_claim_refuses_approve_and_reject_and_writes_nothing(
    history, reviewer, other_reviewer
) -> None:  # type: ignore[no-untyped-def]
    proposal = proposal_claim(proposal=pending(), reviewer=other_reviewer)

    with pytest.raises(ReviewConflict, match="claimed by sam, for under 1 min"):
        proposal_approve(proposal=proposal, reviewer=reviewer, edits=ProposalEdits(urgency="low"))
    with pytest.raises(ReviewConflict, match="take it over first"):
        proposal_reject(proposal=proposal, reviewer=reviewer, reason="Wrong.")

    proposal.refresh_from_db()
    assert (proposal.status, proposal.claimed_by) == ("pending", other_reviewer)
    ticket = Ticket.objects.get(pk=proposal.ticket_id)
    assert (ticket.status, ticket.category, ticket.urgency) == ("awaiting_review", None, "")
    assert not TicketNote.objects.filter(ticket=ticket).exists()
    assert not ChangeRecord.objects.filter(ticket=ticket).exists()
    assert not EvaluationExample.objects.exists()


def test_a_lapsed_claim_refuses_nobody(history, reviewer, other_reviewer, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    proposal = proposal_claim(proposal=pending(), reviewer=other_reviewer)
    later(monkeypatch, 16)

    approved = proposal_approve(proposal=proposal, reviewer=reviewer)

    assert approved.status == "approved"


def test_taking_over_is_explicit_traced_and_logged(
    history, reviewer, other_reviewer, caplog
) -> None:  # type: ignore[no-untyped-def]
    proposal = proposal_claim(proposal=pending(), reviewer=other_reviewer)

    with pytest.raises(ClaimHeld):
        proposal_claim(proposal=proposal, reviewer=reviewer)
    proposal.refresh_from_db()
    assert proposal.claimed_by == other_reviewer
    assert TraceStep.objects.filter(run=proposal.run, kind="claim").count() == 1

    with caplog.at_level(logging.INFO, logger="agent.claims"):
        taken = proposal_claim(proposal=proposal, reviewer=reviewer, take_over=True)

    assert claim_holder(proposal=taken) == reviewer
    step = TraceStep.objects.filter(run=proposal.run, kind="claim").latest("position")
    assert step.actor == reviewer
    assert step.payload == {"claimed_by": str(reviewer), "taken_over_from": "sam"}
    assert step.summary.startswith(f"Claim taken over by {reviewer} from sam, for")
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"proposal {proposal.pk}: claim taken over by {reviewer} from sam"
    ]
    # Now the new holder acts, and the old one is refused.
    with pytest.raises(ReviewConflict):
        proposal_approve(proposal=taken, reviewer=other_reviewer)
    assert proposal_approve(proposal=taken, reviewer=reviewer).status == "approved"


def test_acting_ends_the_claim_and_a_renewal_is_not_traced_again(history, reviewer) -> None:  # type: ignore[no-untyped-def]
    proposal = proposal_claim(proposal=pending(), reviewer=reviewer)
    proposal_claim(proposal=proposal, reviewer=reviewer)  # renewed
    assert TraceStep.objects.filter(run=proposal.run, kind="claim").count() == 1

    rejected = proposal_reject(proposal=proposal, reviewer=reviewer, reason="Wrong.")

    rejected.refresh_from_db()
    assert (rejected.status, rejected.claimed_by, rejected.claimed_at) == ("rejected", None, None)
    with pytest.raises(ReviewConflict, match="already rejected"):
        proposal_claim(proposal=rejected, reviewer=reviewer)


def test_release_ends_only_ones_own_claim(history, reviewer, other_reviewer) -> None:  # type: ignore[no-untyped-def]
    proposal = proposal_claim(proposal=pending(), reviewer=other_reviewer)
    with pytest.raises(ClaimHeld):
        proposal_release(proposal=proposal, reviewer=reviewer)
    assert TriageProposal.objects.get(pk=proposal.pk).claimed_by == other_reviewer

    released = proposal_release(proposal=proposal, reviewer=other_reviewer)

    assert (released.claimed_by, released.claimed_at) == (None, None)
    assert TraceStep.objects.filter(run=proposal.run, kind="claim").count() == 2


def test_only_reviewers_may_claim(history, intake_user) -> None:  # type: ignore[no-untyped-def]
    from django.core.exceptions import PermissionDenied

    proposal = pending()
    with pytest.raises(PermissionDenied):
        proposal_claim(proposal=proposal, reviewer=intake_user)
    assert TriageProposal.objects.get(pk=proposal.pk).claimed_at is None


def test_the_api_shows_the_claim_and_refuses_another_reviewers_approval(
    history, reviewer, other_reviewer
) -> None:  # type: ignore[no-untyped-def]
    proposal = proposal_claim(proposal=pending(), reviewer=other_reviewer)
    api = token_client(reviewer)

    shown = api.get(f"/api/proposals/{proposal.pk}/").json()
    refused = api.post(f"/api/proposals/{proposal.pk}/approve/", {})

    assert shown["claimed_by"] == "sam"
    lapses = proposal.claimed_at + timedelta(minutes=15)  # type: ignore[operator]
    assert shown["claim_lapses_at"] == lapses.isoformat().replace("+00:00", "Z")
    assert refused.status_code == 409
    assert "claimed by sam" in refused.json()["detail"]
    assert TriageProposal.objects.get(pk=proposal.pk).status == "pending"
    free = pending("Another one")
    assert api.get(f"/api/proposals/{free.pk}/").json()["claimed_by"] is None


def test_the_queue_claims_a_batch_and_says_who_holds_each(
    client: Client, history, reviewer, other_reviewer
) -> None:  # type: ignore[no-untyped-def]
    mine, theirs = pending("First"), pending("Second")
    proposal_claim(proposal=theirs, reviewer=other_reviewer)
    client.force_login(reviewer)

    response = client.post(
        "/admin/agent/triageproposal/?status__exact=pending",
        {"action": "bulk_claim", "_selected_action": [mine.pk, theirs.pk]},
        follow=True,
    )

    page = response.content.decode()
    assert "Claimed 1 proposal for 15 minutes." in page
    assert f"Left 1 proposal unclaimed: #{theirs.ticket_id}: it is claimed by sam" in page
    assert TriageProposal.objects.get(pk=mine.pk).claimed_by == reviewer
    assert TriageProposal.objects.get(pk=theirs.pk).claimed_by == other_reviewer
    assert 'class="queue-claim queue-claim-mine"' in page
    assert "sam · under 1 min" in page


def test_the_review_page_of_a_claimed_proposal_offers_only_a_take_over(
    client: Client, history, reviewer, other_reviewer
) -> None:  # type: ignore[no-untyped-def]
    proposal = proposal_claim(proposal=pending(), reviewer=other_reviewer)
    url = f"/admin/agent/triageproposal/{proposal.pk}/change/"
    client.force_login(reviewer)

    page = client.get(url).content.decode()
    refused = client.post(url, {"action": "approve"})
    taken = client.post(url, {"action": "take_over"}, follow=True).content.decode()

    assert "Claimed by sam, for under 1 min" in page
    assert 'id="take-over"' in page
    assert 'id="approve"' not in page
    assert 'id="reject-form"' not in page
    assert refused.status_code == 409
    assert "take it over first" in refused.content.decode()
    assert f"Took ticket #{proposal.ticket_id} over from sam, for" in taken
    assert 'id="approve"' in taken
    assert TriageProposal.objects.get(pk=proposal.pk).claimed_by == reviewer


def test_after_an_action_the_next_page_skips_proposals_others_hold(
    client: Client, history, reviewer, other_reviewer
) -> None:  # type: ignore[no-untyped-def]
    first, held, free = pending("First"), pending("Held"), pending("Free")
    proposal_claim(proposal=held, reviewer=other_reviewer)
    client.force_login(reviewer)

    response = client.post(f"/admin/agent/triageproposal/{first.pk}/change/", {"action": "approve"})

    assert response.status_code == 302
    assert response["Location"] == f"/admin/agent/triageproposal/{free.pk}/change/"
    page = client.get(response["Location"]).content.decode()
    assert f"/admin/agent/triageproposal/{held.pk}/change/" not in page  # neither j nor k


def test_a_rerun_does_not_replace_a_safe_stop_another_reviewer_holds(
    history, reviewer, other_reviewer, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    from agent.rerun import RerunRefused, triage_rerun
    from tests.agent.test_queues import triaged

    stopped = proposal_claim(proposal=triaged("safe_stop"), reviewer=other_reviewer)

    with (
        django_capture_on_commit_callbacks(execute=False) as queued,
        pytest.raises(RerunRefused, match="is claimed by sam"),
    ):
        triage_rerun(ticket_id=stopped.ticket_id, requested_by=reviewer)

    assert queued == []
    stopped.refresh_from_db()
    assert (stopped.status, stopped.claimed_by) == ("pending", other_reviewer)
    assert Ticket.objects.get(pk=stopped.ticket_id).status == "needs_manual_triage"
    assert not ChangeRecord.objects.filter(ticket_id=stopped.ticket_id).exists()
