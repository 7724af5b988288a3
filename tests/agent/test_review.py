"""Staff review through the API and the admin: approve, edit, reject, undo; journaled,
undoable, conflict-safe, permission-checked; corrections become evaluation examples."""

import html as html_module
import re
import threading

import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from agent.models import TraceStep, TriageProposal
from agent.services import triage_ticket_run
from evaluations.models import EvaluationExample
from tests.agent.scripted import ScriptedBackend, submit, tool_use, turn
from tests.conftest import token_client
from tests.factories import CategoryFactory, ResolvedTicketFactory, TicketFactory, UserFactory
from tickets.models import ChangeRecord, Ticket, TicketNote


@pytest.fixture
def proposal(new_ticket: Ticket) -> TriageProposal:
    backend = ScriptedBackend(
        submit(
            new_ticket.pk,
            urgency="high",
            confidence="high",
            draft_note="Refund the duplicate charge.",
        )
    )
    result = triage_ticket_run(ticket_id=new_ticket.pk, backend=backend)
    assert result is not None
    return result


def _approve(api: APIClient, proposal: TriageProposal, **edits: str):  # type: ignore[no-untyped-def]
    return api.post(f"/api/proposals/{proposal.pk}/approve/", edits)


def test_approve_publishes_note_sets_labels_and_journals(reviewer_api, reviewer, proposal) -> None:  # type: ignore[no-untyped-def]
    response = _approve(reviewer_api, proposal)

    assert response.status_code == 200
    assert response.json()["status"] == "approved"
    ticket = Ticket.objects.get(pk=proposal.ticket_id)
    assert (ticket.category.slug, ticket.urgency, ticket.status) == ("billing", "high", "triaged")
    note = TicketNote.objects.get(ticket=ticket)
    assert (note.body, note.source, note.author) == (
        "Refund the duplicate charge.",
        "agent_proposal",
        reviewer,
    )
    records = ChangeRecord.objects.filter(ticket=ticket).order_by("id")
    assert [(r.action, r.target) for r in records] == [
        ("create", "tickets.TicketNote"),
        ("update", "tickets.Ticket"),
    ]
    assert records[1].before == {"category_id": None, "urgency": "", "status": "awaiting_review"}
    assert records[1].after == {
        "category_id": ticket.category_id,
        "urgency": "high",
        "status": "triaged",
    }
    assert {r.actor for r in records} == {reviewer}
    step = TraceStep.objects.filter(run=proposal.run, kind="approval").get()
    assert step.actor == reviewer
    assert not EvaluationExample.objects.exists()  # nothing was corrected


def test_approve_with_edits_creates_example(reviewer_api, reviewer, proposal) -> None:  # type: ignore[no-untyped-def]
    other = CategoryFactory(slug="account-access")

    response = _approve(
        reviewer_api,
        proposal,
        category="account-access",
        urgency="normal",
        note="Reset the customer's 2FA.",
    )

    assert response.json()["status"] == "edited"
    ticket = Ticket.objects.get(pk=proposal.ticket_id)
    assert (ticket.category, ticket.urgency) == (other, "normal")
    example = EvaluationExample.objects.get()
    assert (example.source, example.suite, example.proposal_id) == (
        "correction",
        "corrections",
        proposal.pk,
    )
    assert example.acceptable_outcomes == ["proposal"]
    assert (example.expected_category, example.expected_urgency) == ("account-access", "normal")
    assert example.ticket_snapshot["subject"] == ticket.subject
    assert example.context_snapshot == proposal.similar_tickets
    assert example.author == reviewer


def test_a_later_correction_updates_the_same_example(reviewer, proposal) -> None:  # type: ignore[no-untyped-def]
    from agent.review import ProposalEdits, proposal_approve
    from evaluations.services import example_record_correction

    proposal_approve(proposal=proposal, reviewer=reviewer, edits=ProposalEdits(urgency="low"))
    proposal.refresh_from_db()
    example_record_correction(proposal=proposal, reviewer=reviewer)

    assert EvaluationExample.objects.count() == 1


def test_reject_needs_a_reason_and_records_an_example(reviewer_api, proposal) -> None:  # type: ignore[no-untyped-def]
    empty = reviewer_api.post(f"/api/proposals/{proposal.pk}/reject/", {"reason": ""})
    assert empty.status_code == 400
    assert empty.json() == {"reason": ["This field may not be blank."]}
    assert not EvaluationExample.objects.exists()

    response = reviewer_api.post(
        f"/api/proposals/{proposal.pk}/reject/", {"reason": "This is a login problem, not billing."}
    )

    assert response.json()["status"] == "rejected"
    ticket = Ticket.objects.get(pk=proposal.ticket_id)
    assert ticket.status == "needs_manual_triage"
    assert ticket.category is None
    assert not TicketNote.objects.filter(ticket=ticket).exists()
    example = EvaluationExample.objects.get()
    assert example.acceptable_outcomes == ["clarification", "refusal"]
    assert example.notes == "This is a login problem, not billing."


def test_undo_reverses_the_approval_and_twice_is_harmless(reviewer_api, proposal) -> None:  # type: ignore[no-untyped-def]
    _approve(reviewer_api, proposal, note="Edited note.")

    first = reviewer_api.post(f"/api/proposals/{proposal.pk}/undo/")
    second = reviewer_api.post(f"/api/proposals/{proposal.pk}/undo/")

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["status"] == "undone"
    ticket = Ticket.objects.get(pk=proposal.ticket_id)
    # The labels are restored; nothing awaits review any more, so a person takes it over.
    assert (ticket.category, ticket.urgency, ticket.status) == (None, "", "needs_manual_triage")
    assert TicketNote.objects.get(ticket=ticket).retracted_at is not None
    assert not ChangeRecord.objects.filter(
        ticket=ticket, reversible=True, reverted_at=None
    ).exists()
    assert TraceStep.objects.filter(run=proposal.run, kind="rollback").count() == 1


def test_undo_after_the_ticket_changed_is_a_conflict(reviewer_api, proposal) -> None:  # type: ignore[no-untyped-def]
    _approve(reviewer_api, proposal)
    Ticket.objects.filter(pk=proposal.ticket_id).update(urgency="urgent")  # someone else

    response = reviewer_api.post(f"/api/proposals/{proposal.pk}/undo/")

    assert response.status_code == 409
    assert response.json() == {
        "detail": "the ticket changed since the approval (urgency); undo it by hand"
    }
    ticket = Ticket.objects.get(pk=proposal.ticket_id)
    assert (ticket.urgency, ticket.status) == ("urgent", "triaged")  # nothing reverted
    assert TicketNote.objects.get(ticket=ticket).retracted_at is None
    assert TriageProposal.objects.get(pk=proposal.pk).status == "approved"


def test_only_pending_proposals_can_be_approved_or_rejected(reviewer_api, proposal) -> None:  # type: ignore[no-untyped-def]
    _approve(reviewer_api, proposal)

    again = _approve(reviewer_api, proposal)
    reject = reviewer_api.post(f"/api/proposals/{proposal.pk}/reject/", {"reason": "late"})
    undo_pending = reviewer_api.post("/api/proposals/999999/undo/")

    assert again.status_code == 409
    assert again.json() == {"detail": "this proposal is already approved"}
    assert reject.status_code == 409
    assert undo_pending.status_code == 404
    assert TicketNote.objects.count() == 1


def test_a_safe_stop_cannot_be_approved(reviewer_api, new_ticket) -> None:  # type: ignore[no-untyped-def]
    stopped = triage_ticket_run(
        ticket_id=new_ticket.pk,
        backend=ScriptedBackend(*[turn(tool_use("list_reply_templates", {}))] * 8),
    )
    assert stopped.outcome == "safe_stop"

    response = _approve(reviewer_api, stopped)

    assert response.status_code == 409
    assert "reject it to take the ticket over" in response.json()["detail"]
    assert TriageProposal.objects.get(pk=stopped.pk).status == "pending"
    assert not TicketNote.objects.exists()


def test_a_safe_stop_is_taken_over_by_rejecting_it(reviewer_api, new_ticket) -> None:  # type: ignore[no-untyped-def]
    """Rejecting is how a person takes a safe stop over; it judged nothing, so without the
    right labels it teaches nothing either."""
    stopped = triage_ticket_run(
        ticket_id=new_ticket.pk,
        backend=ScriptedBackend(*[turn(tool_use("list_reply_templates", {}))] * 8),
    )
    assert stopped is not None
    assert stopped.outcome == "safe_stop"

    response = reviewer_api.post(
        f"/api/proposals/{stopped.pk}/reject/", {"reason": "I will triage it myself."}
    )

    assert (response.status_code, response.json()["status"]) == (200, "rejected")
    assert Ticket.objects.get(pk=new_ticket.pk).status == "needs_manual_triage"
    assert not EvaluationExample.objects.exists()


def test_invalid_edits_are_a_400_and_nothing_changes(reviewer_api, proposal) -> None:  # type: ignore[no-untyped-def]
    response = _approve(reviewer_api, proposal, category="nope", urgency="whenever")

    assert response.status_code == 400
    assert response.json() == {
        "category": ["Object with slug=nope does not exist."],
        "urgency": ['"whenever" is not a valid choice.'],
    }
    assert TriageProposal.objects.get(pk=proposal.pk).status == "pending"
    assert not ChangeRecord.objects.exists()


def test_review_needs_the_review_permission(proposal, db) -> None:  # type: ignore[no-untyped-def]
    outsider = token_client(UserFactory())

    assert _approve(outsider, proposal).status_code == 403
    assert (
        outsider.post(f"/api/proposals/{proposal.pk}/reject/", {"reason": "x"}).status_code == 403
    )
    assert APIClient().post(f"/api/proposals/{proposal.pk}/approve/").status_code == 401
    assert TriageProposal.objects.get(pk=proposal.pk).status == "pending"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_reviewers_approving_at_once_one_wins(history) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Group

    from tests.factories import TicketFactory

    ticket = TicketFactory(subject="Charged twice", body="Refund please.")
    proposal = triage_ticket_run(ticket_id=ticket.pk, backend=ScriptedBackend(submit(ticket.pk)))
    reviewers = [UserFactory(is_staff=True) for _ in range(2)]
    for user in reviewers:
        user.groups.add(Group.objects.get(name="Support reviewers"))
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def approve(user) -> None:  # type: ignore[no-untyped-def]
        client = token_client(user)
        barrier.wait()
        statuses.append(_approve(client, proposal).status_code)
        connection.close()

    threads = [threading.Thread(target=approve, args=(user,)) for user in reviewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200, 409]
    assert TicketNote.objects.filter(ticket=ticket).count() == 1
    assert ChangeRecord.objects.filter(ticket=ticket).count() == 2


# --- the admin ------------------------------------------------------------------------------


def test_admin_review_page_approve_with_edits_then_undo(client: Client, reviewer, proposal) -> None:  # type: ignore[no-untyped-def]
    client.force_login(reviewer)
    url = f"/admin/agent/triageproposal/{proposal.pk}/change/"

    page = client.get(url)
    assert page.status_code == 200
    for text in (
        "Refund the duplicate charge.",
        "Save edits and approve",
        "Open the trace",
        proposal.ticket.subject,
    ):
        assert text in page.content.decode()

    done = client.post(
        url,
        {
            "action": "edit",
            "category": proposal.category_id,
            "urgency": "normal",
            "note": "Refund it.\nThen close.",
        },
    )
    assert done.status_code == 302
    proposal.refresh_from_db()
    assert proposal.status == "edited"
    Ticket.objects.filter(pk=proposal.ticket_id).update(urgency="low")  # a later change
    shown = client.get(url).content.decode()
    assert "Draft → published note" in shown
    assert "urgency: high → <strong>normal</strong>" in shown  # what the approval set
    Ticket.objects.filter(pk=proposal.ticket_id).update(urgency="normal")

    client.post(url, {"action": "undo"})
    proposal.refresh_from_db()
    assert proposal.status == "undone"
    assert TicketNote.objects.get().retracted_at is not None


def test_admin_reject_without_reason_shows_the_error(client: Client, reviewer, proposal) -> None:  # type: ignore[no-untyped-def]
    client.force_login(reviewer)

    page = client.post(
        f"/admin/agent/triageproposal/{proposal.pk}/change/", {"action": "reject", "reason": "  "}
    )

    assert page.status_code == 200
    assert "Say why you reject it" in page.content.decode()
    assert TriageProposal.objects.get(pk=proposal.pk).status == "pending"


def _selected(html: str, form_id: str) -> dict[str, str]:
    """The chosen option of each select, and each textarea's text, in one form of a page."""
    form = html[html.index(f'id="{form_id}"') :]
    form = form[: form.index("</form>")]
    values = {}
    for name, options in re.findall(r'<select name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', options)
        values[name] = chosen.group(1) if chosen else ""
    for name, text in re.findall(r'<textarea name="([^"]+)"[^>]*>(.*?)</textarea>', form, re.S):
        values[name] = html_module.unescape(text).strip()
    return values


def test_admin_failed_reject_keeps_the_input_and_the_edit_form(
    client: Client, reviewer, proposal
) -> None:  # type: ignore[no-untyped-def]
    """A reject without a reason shows the page again: the reject form with what was chosen and
    the error, the edit form still holding the proposal's labels and draft; nothing written."""
    login = CategoryFactory(slug="account-access")
    client.force_login(reviewer)
    url = f"/admin/agent/triageproposal/{proposal.pk}/change/"

    page = client.post(url, {"action": "reject", "reason": " ", "correct_category": login.pk})

    assert page.status_code == 200
    html = page.content.decode()
    assert "Say why you reject it" in html
    assert _selected(html, "reject-form") == {
        "reason": "",
        "correct_category": str(login.pk),
        "correct_urgency": "",
    }
    assert _selected(html, "edit-form") == {
        "category": str(proposal.category_id),
        "urgency": "high",
        "note": "Refund the duplicate charge.",
    }
    # What Reject will save, for the labels chosen before the error.
    assert (
        "Saved as an evaluation example: a proposal in Account access passes, whatever its "
        "urgency." in html
    )
    assert TriageProposal.objects.get(pk=proposal.pk).status == "pending"
    assert not EvaluationExample.objects.exists()
    assert not TicketNote.objects.exists()
    assert not ChangeRecord.objects.exists()


def test_admin_failed_edit_keeps_what_was_typed(client: Client, reviewer, proposal) -> None:  # type: ignore[no-untyped-def]
    client.force_login(reviewer)
    url = f"/admin/agent/triageproposal/{proposal.pk}/change/"

    page = client.post(
        url, {"action": "edit", "category": "999999", "urgency": "low", "note": "Refund it once."}
    )

    assert page.status_code == 200
    html = page.content.decode()
    assert "Select a valid choice" in html
    assert _selected(html, "edit-form") == {
        "category": "",
        "urgency": "low",
        "note": "Refund it once.",
    }
    assert TriageProposal.objects.get(pk=proposal.pk).status == "pending"
    assert not TicketNote.objects.exists()
    assert not EvaluationExample.objects.exists()


def test_admin_conflict_shows_the_page_with_what_was_not_saved(
    client: Client, reviewer, proposal
) -> None:  # type: ignore[no-untyped-def]
    """Another reviewer approved first: the page says so in a sentence and shows the note the
    second reviewer wrote instead of dropping it."""
    token_client(UserFactory(is_staff=True, is_superuser=True)).post(
        f"/api/proposals/{proposal.pk}/approve/"
    )
    client.force_login(reviewer)

    page = client.post(
        f"/admin/agent/triageproposal/{proposal.pk}/change/",
        {"action": "edit", "urgency": "low", "note": "My own note."},
    )

    assert page.status_code == 409
    html = page.content.decode()
    assert (
        f"Could not approve ticket #{proposal.ticket_id}: this proposal is already approved."
        in html
    )
    assert "What you submitted was not saved" in html
    assert "My own note." in html
    assert list(TicketNote.objects.values_list("body", flat=True)) == [
        "Refund the duplicate charge."
    ]
    assert TriageProposal.objects.get(pk=proposal.pk).status == "approved"


def test_admin_review_messages_are_sentences(client: Client, reviewer, history) -> None:  # type: ignore[no-untyped-def]
    from tests.factories import TicketFactory

    def triaged() -> TriageProposal:
        ticket = TicketFactory()
        made = triage_ticket_run(ticket_id=ticket.pk, backend=ScriptedBackend(submit(ticket.pk)))
        assert made is not None
        return made

    def said(proposal: TriageProposal, **data: str) -> list[str]:
        url = f"/admin/agent/triageproposal/{proposal.pk}/change/"
        response = client.post(url, data, follow=True)
        return [str(message) for message in response.context["messages"]]

    client.force_login(reviewer)
    approved, edited, unchanged, rejected = triaged(), triaged(), triaged(), triaged()

    assert said(approved, action="approve") == [f"Approved ticket #{approved.ticket_id}."]
    assert said(edited, action="edit", urgency="low") == [
        f"Approved ticket #{edited.ticket_id} with your edits."
    ]
    assert said(unchanged, action="edit", note=unchanged.draft_note) == [
        f"Approved ticket #{unchanged.ticket_id} as drafted: your edits changed nothing."
    ]
    assert said(rejected, action="reject", reason="Not billing.") == [
        f"Rejected ticket #{rejected.ticket_id}; saved as an evaluation example."
    ]
    assert said(approved, action="undo") == [f"Undid the approval of ticket #{approved.ticket_id}."]
    assert TriageProposal.objects.get(pk=unchanged.pk).status == "approved"
    assert TriageProposal.objects.get(pk=edited.pk).status == "edited"


def test_admin_review_needs_the_permission(client: Client, proposal) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Permission

    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_triageproposal"))
    client.force_login(viewer)
    url = f"/admin/agent/triageproposal/{proposal.pk}/change/"

    assert "You can read proposals but not review them" in client.get(url).content.decode()
    assert client.post(url, {"action": "approve"}).status_code == 403
    assert TriageProposal.objects.get(pk=proposal.pk).status == "pending"


def test_admin_queue_orders_by_urgency_then_age_and_filters(
    client: Client, reviewer, history
) -> None:  # type: ignore[no-untyped-def]
    from tests.factories import TicketFactory

    made = []
    for urgency in ("low", "urgent", "normal"):
        ticket = TicketFactory(subject=f"{urgency} ticket")
        made.append(
            triage_ticket_run(
                ticket_id=ticket.pk, backend=ScriptedBackend(submit(ticket.pk, urgency=urgency))
            )
        )
    client.force_login(reviewer)

    page = client.get("/admin/agent/triageproposal/?status__exact=pending&confidence__exact=high")
    html = page.content.decode()

    assert html.index("urgent ticket") < html.index("normal ticket") < html.index("low ticket")


def test_the_queue_puts_what_needs_a_person_first_in_the_admin_and_the_api(
    client: Client, reviewer, reviewer_api, history
) -> None:  # type: ignore[no-untyped-def]
    """A human action, then a suspected injection, then urgency (none counts as high), then
    age: a declined $2,300 refund comes before low-priority questions, whatever its urgency."""
    from tests.agent.test_queues import clarify, decline, exhaust
    from tests.factories import TicketFactory

    def made(subject: str, *turns):  # type: ignore[no-untyped-def]
        ticket = TicketFactory(subject=subject)
        steps = [step(ticket.pk) if callable(step) else step for step in turns]
        flat = [s for step in steps for s in (step if isinstance(step, list) else [step])]
        proposal = triage_ticket_run(ticket_id=ticket.pk, backend=ScriptedBackend(*flat))
        assert proposal is not None
        return proposal

    # Created oldest first, in an order unlike the queue's.
    low_old = made("a low question, old", lambda pk: submit(pk, urgency="low"))
    low_new = made("a low question, new", lambda pk: submit(pk, urgency="low"))
    refund = made("refund me $2,300 now", decline)
    stopped = made("a safe stop", exhaust)
    normal = made("a normal request", lambda pk: submit(pk, urgency="normal"))
    injected = made("an injection", lambda pk: submit(pk, urgency="low", injection_suspected=True))
    asked = made("which invoice?", clarify)
    urgent = made("production is down", lambda pk: submit(pk, urgency="urgent"))
    high = made("one customer blocked", lambda pk: submit(pk, urgency="high"))
    expected = [refund, injected, urgent, stopped, asked, high, normal, low_old, low_new]
    client.force_login(reviewer)

    page = client.get("/admin/agent/triageproposal/?status__exact=pending").content.decode()
    api = reviewer_api.get("/api/proposals/?status=pending").json()

    positions = [page.index(f"#{p.ticket_id} {p.ticket.subject}") for p in expected]
    assert positions == sorted(positions)
    assert [row["id"] for row in api["results"]] == [p.pk for p in expected]
    assert "<h1>Review queue: drafts awaiting review, most urgent first</h1>" in page
    assert page.count('class="queue-mark queue-flagged"') == 2  # the refusal, the injection
    assert page.count('class="queue-mark queue-urgent"') == 1


def test_the_queue_warns_when_the_agent_is_switched_off(client: Client, reviewer, db) -> None:  # type: ignore[no-untyped-def]
    from agent.selectors import agent_settings_get

    client.force_login(reviewer)
    url = "/admin/agent/triageproposal/?status__exact=pending"
    assert 'id="kill-switch-banner"' not in client.get(url).content.decode()
    agent_settings = agent_settings_get()
    agent_settings.agent_enabled = False
    agent_settings.save()

    page = client.get(url).content.decode()

    assert 'id="kill-switch-banner"' in page
    assert "The agent is switched off (kill switch)." in page


def test_reviewers_land_on_the_queue_after_logging_in(client: Client, db) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Group, Permission

    reviewer = UserFactory(username="rita", is_staff=True)
    reviewer.groups.add(Group.objects.get(name="Support reviewers"))
    curator = UserFactory(username="cora", is_staff=True)  # staff who may not see proposals
    curator.user_permissions.add(Permission.objects.get(codename="view_category"))
    queue = "/admin/agent/triageproposal/?status__exact=pending"

    login_page = client.get("/admin/login/").content.decode()
    landed = client.post(
        "/admin/login/", {"username": "rita", "password": "correct-horse-battery"}, follow=True
    )
    index = client.get("/admin/").content.decode()
    client.logout()
    asked = client.post(
        "/admin/login/?next=/admin/tickets/",
        {"username": "rita", "password": "correct-horse-battery"},
    )
    client.logout()
    client.force_login(curator)

    assert 'name="next" value="/"' in login_page
    assert landed.redirect_chain == [("/", 302), (queue, 302)]
    assert f'href="{queue}" id="review-queue-link"' in index  # and a link from the index
    assert asked.url == "/admin/tickets/"  # an explicit next still wins
    assert client.get("/").url == "/admin/"


def test_admin_queue_search_finds_the_requesters_email(client: Client, reviewer, proposal) -> None:  # type: ignore[no-untyped-def]
    from tests.factories import TicketFactory

    other = TicketFactory(subject="Another customer", requester_email="ivo@example.net")
    triage_ticket_run(ticket_id=other.pk, backend=ScriptedBackend(submit(other.pk)))
    client.force_login(reviewer)

    found = client.get("/admin/agent/triageproposal/", {"q": "maria@example.com"})

    assert [p.pk for p in found.context["cl"].result_list] == [proposal.pk]


def test_the_api_queue_is_in_the_admin_queues_order(client: Client, reviewer, history) -> None:  # type: ignore[no-untyped-def]
    """One queue, one order: the API's pending list is the admin queue's."""
    from tests.factories import TicketFactory

    for subject, step in (
        ("unclear ticket", None),
        ("low ticket", "low"),
        ("urgent ticket", "urgent"),
        ("normal ticket", "normal"),
    ):
        ticket = TicketFactory(subject=subject)
        ask = {"ticket_id": ticket.pk, "question": "What happened?", "missing": ["details"]}
        backend = ScriptedBackend(
            submit(ticket.pk, urgency=step)
            if step
            else turn(tool_use("request_clarification", ask))
        )
        triage_ticket_run(ticket_id=ticket.pk, backend=backend)
    client.force_login(reviewer)

    html = client.get("/admin/agent/triageproposal/?status__exact=pending").content.decode()
    in_admin = sorted(
        ("unclear ticket", "low ticket", "urgent ticket", "normal ticket"), key=html.index
    )
    api = token_client(reviewer).get("/api/proposals/?status=pending").json()
    in_api = [TriageProposal.objects.get(pk=row["id"]).ticket.subject for row in api["results"]]

    # (The order itself, flags and all, is test_the_queue_puts_what_needs_a_person_first...)
    assert in_admin.index("urgent ticket") < in_admin.index("normal ticket")
    assert in_admin.index("normal ticket") < in_admin.index("low ticket")
    assert in_api == in_admin


def test_bulk_approve_takes_only_pending_high_confidence_proposals(
    client: Client, reviewer, history
) -> None:  # type: ignore[no-untyped-def]
    from tests.factories import TicketFactory

    proposals = []
    for confidence in ("high", "low"):
        ticket = TicketFactory(subject=f"{confidence} confidence")
        proposals.append(
            triage_ticket_run(
                ticket_id=ticket.pk,
                backend=ScriptedBackend(submit(ticket.pk, confidence=confidence)),
            )
        )
    client.force_login(reviewer)

    response = client.post(
        "/admin/agent/triageproposal/",
        {"action": "bulk_approve", "_selected_action": [p.pk for p in proposals]},
        follow=True,
    )

    statuses = {p.confidence: TriageProposal.objects.get(pk=p.pk).status for p in proposals}
    assert statuses == {"high": "approved", "low": "pending"}
    text = response.content.decode()
    assert "Approved 1 proposal." in text
    assert "Left 1 proposal untouched" in text
    # Beside the action: how far high can be trusted (here no model was trained at all).
    assert "no high band yet: too little labelled history to calibrate" in text


def test_admin_reject_records_the_right_labels_only_when_given(
    client: Client, reviewer, proposal
) -> None:  # type: ignore[no-untyped-def]
    """The reject form starts blank: rejecting must not record the agent's labels as right."""
    client.force_login(reviewer)
    url = f"/admin/agent/triageproposal/{proposal.pk}/change/"
    page = client.get(url).content.decode()
    reject_form = page[page.index('id="reject-form"') :]
    chosen = re.findall(
        r'<option value="([^"]*)" selected>', reject_form[: reject_form.index("</form>")]
    )
    assert chosen == ["", ""]  # both selects start on the blank choice

    client.post(
        url,
        {
            "action": "reject",
            "reason": "It is a login problem.",
            "correct_category": CategoryFactory(slug="account-access").pk,
            "correct_urgency": "high",
        },
    )

    example = EvaluationExample.objects.get()
    assert example.acceptable_outcomes == ["proposal"]
    assert (example.expected_category, example.expected_urgency) == ("account-access", "high")


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"category": "account-access"}, (["proposal"], "account-access", "")),
        ({"urgency": "low"}, (["proposal"], "", "low")),
        ({"category": "account-access", "urgency": "low"}, (["proposal"], "account-access", "low")),
        ({}, (["clarification", "refusal"], "", "")),
    ],
    ids=["category-only", "urgency-only", "both", "neither"],
)
def test_a_rejection_records_each_corrected_label_on_its_own(
    reviewer_api, proposal, labels, expected
) -> None:  # type: ignore[no-untyped-def]
    """A label the reviewer did not give is not judged; with none, the example expects any
    answer but the rejected one (a proposal here) and a safe stop."""
    response = reviewer_api.post(
        f"/api/proposals/{proposal.pk}/reject/", {"reason": "Wrong labels.", **labels}
    )

    assert response.status_code == 200
    example = EvaluationExample.objects.get()
    assert (
        example.acceptable_outcomes,
        example.expected_category,
        example.expected_urgency,
    ) == expected


def test_a_nul_in_the_category_on_approve_or_reject_is_a_400_and_changes_nothing(
    reviewer_api, proposal
) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL cannot compare a NUL; the API's parser refuses it before any query."""
    for action, extra in (("approve", {}), ("reject", {"reason": "wrong"})):
        response = reviewer_api.post(
            f"/api/proposals/{proposal.pk}/{action}/", {"category": "bill\x00ing", **extra}
        )
        assert response.status_code == 400
        assert list(response.json()) == ["category"]
    assert TriageProposal.objects.get(pk=proposal.pk).status == TriageProposal.Status.PENDING
    assert not TicketNote.objects.exists()


def test_a_runs_trace_loads_its_actors_in_a_fixed_number_of_queries(
    reviewer_api, reviewer, proposal
) -> None:  # type: ignore[no-untyped-def]
    """Approval and rollback steps carry their reviewer; reading a trace must not load each
    one with its own query: the count does not grow with the reviewed steps."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from agent.review import proposal_approve, proposal_undo

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            reviewer_api.get(f"/api/runs/{proposal.run_id}/")
        return len(captured)

    before = queries()
    proposal_approve(proposal=proposal, reviewer=reviewer)
    proposal_undo(proposal=TriageProposal.objects.get(pk=proposal.pk), reviewer=reviewer)

    assert queries() == before
    body = reviewer_api.get(f"/api/runs/{proposal.run_id}/").json()
    assert [step["actor"] for step in body["steps"] if step["actor"]] == [str(reviewer)] * 2


def test_every_similar_ticket_the_agent_was_shown_is_kept_once_closest_first(history) -> None:  # type: ignore[no-untyped-def]
    """Issue 11, defect 6: a model that asks for more neighbours than the opening three (the
    offline one votes with ten) may cite any of them, so the proposal keeps them all."""
    for month in ("May", "June", "July", "August"):
        ResolvedTicketFactory(
            subject=f"Charged twice in {month}",
            body="My card was charged twice.",
            category=history["billing"],
        )
    ticket = TicketFactory(subject="Charged twice", body="My card was charged twice for March.")
    more = turn(tool_use("list_similar_tickets", {"ticket_id": ticket.pk, "limit": 10}))
    backend = ScriptedBackend(more, submit(ticket.pk))

    proposal = triage_ticket_run(ticket_id=ticket.pk, backend=backend)

    assert proposal is not None
    shown = [row["ticket_id"] for row in proposal.similar_tickets]
    assert len(shown) > 3
    assert len(shown) == len(set(shown))
    scores = [row["similarity"] for row in proposal.similar_tickets]
    assert scores == sorted(scores, reverse=True)


def test_the_review_page_shows_similar_tickets_by_category_name_and_match(
    client: Client, reviewer, new_ticket
) -> None:  # type: ignore[no-untyped-def]
    """Categories by name, similarity as a percentage of the best match, with the raw score
    and the scale explained."""
    proposal = triage_ticket_run(
        ticket_id=new_ticket.pk, backend=ScriptedBackend(submit(new_ticket.pk))
    )
    assert proposal is not None
    assert len(proposal.similar_tickets) >= 2
    best, second = proposal.similar_tickets[:2]
    client.force_login(reviewer)

    page = client.get(f"/admin/agent/triageproposal/{proposal.pk}/change/").content.decode()

    start = page.index('id="similar-tickets"')
    table = page[start : page.index("</table>", start)]
    assert "<td>Billing</td>" in table
    assert "<td>billing</td>" not in table
    assert f'title="retrieval score {best["similarity"]:.2f}">100%</td>' in table
    percent = round(100 * second["similarity"] / best["similarity"])
    assert f">{percent}%</td>" in table
    assert "as a percentage of the closest one" in page


def test_the_queue_shows_categories_by_name(client: Client, reviewer, proposal) -> None:  # type: ignore[no-untyped-def]
    client.force_login(reviewer)

    page = client.get("/admin/agent/triageproposal/?status__exact=pending").content.decode()

    row = re.search(r'<td class="field-category[^"]*">(.*?)</td>', page)
    assert row is not None
    assert row.group(1) == "Billing"
