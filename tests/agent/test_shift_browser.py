"""A reviewer's whole shift, and a triage admin's curating, in a real browser (see
tests/agent/test_browser.py for the set-up): claim, approve, edit and approve, reject with only
a category, undo and re-run, the keyboard, a claimed proposal taken over, the clarification
question copied and marked sent, the overdue rows, and the pages at a phone's 390 px."""

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from agent.claims import proposal_claim
from agent.models import ReviewTarget, TraceStep, TriageProposal
from agent.services import triage_ticket_run
from evaluations.models import EvaluationExample
from tests.agent.scripted import ScriptedBackend, submit
from tests.agent.test_queues import clarify
from tests.conftest import PASSWORD, sign_in
from tests.factories import TicketFactory, UserFactory
from tickets.models import Category, ReplyTemplate, Ticket, TicketNote
from tickets.roles import SUPPORT_REVIEWERS, TRIAGE_ADMINS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

# The page never scrolls sideways: everything fits the window's width.
FITS = "() => document.documentElement.scrollWidth <= window.innerWidth"


def _staff(username: str, group: str):  # type: ignore[no-untyped-def]
    user = UserFactory(username=username, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


def _proposal(subject: str, *steps, age: timedelta | None = None) -> TriageProposal:  # type: ignore[no-untyped-def]
    ticket = TicketFactory(subject=subject, body=f"{subject}. Please help.")
    if age is not None:
        Ticket.objects.filter(pk=ticket.pk).update(created_at=timezone.now() - age)
    proposal = triage_ticket_run(
        ticket_id=ticket.pk, backend=ScriptedBackend(*[step(ticket.pk) for step in steps])
    )
    assert proposal is not None
    return proposal


def _review_url(live_server: LiveServer, proposal: TriageProposal) -> str:
    return f"{live_server.url}/admin/agent/triageproposal/{proposal.pk}/change/"


def _status(proposal: TriageProposal) -> str:
    return TriageProposal.objects.get(pk=proposal.pk).status


def _shots(tmp_path: Path) -> Path:
    """Where screenshots go: ``TRIAGE_SCREENSHOTS`` to keep them, else the test's own folder."""
    folder = Path(os.environ.get("TRIAGE_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_a_reviewers_shift_in_the_browser(
    page: Page, live_server: LiveServer, history: dict[str, Category], tmp_path: Path
) -> None:
    shots = _shots(tmp_path)
    rita = _staff("rita", SUPPORT_REVIEWERS)
    sam = _staff("sam", SUPPORT_REVIEWERS)
    charged = _proposal(
        "Charged twice this month",
        lambda pk: submit(pk, urgency="high", draft_note="Refund the duplicate charge."),
    )
    vat = _proposal("Invoice shows the wrong VAT", lambda pk: submit(pk, urgency="normal"))
    login = _proposal("Cannot log in after the reset", lambda pk: submit(pk, urgency="low"))
    unclear = _proposal("It does not work", clarify)
    stale = _proposal(
        "Export fails since Monday", lambda pk: submit(pk, urgency="normal"), age=timedelta(days=2)
    )
    sams = _proposal("Card declined at checkout", lambda pk: submit(pk, urgency="high"))
    proposal_claim(proposal=sams, reviewer=sam)

    # The queue: the waiting time, the overdue row highlighted, who holds what.
    sign_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/admin/agent/triageproposal/?status__exact=pending")
    page.set_viewport_size({"width": 1366, "height": 900})
    rows = page.locator("#result_list tbody tr")
    stale_row = rows.filter(has_text="Export fails since Monday")
    expect(stale_row.locator(".queue-overdue")).to_have_text("overdue")
    expect(stale_row.locator(".field-waiting")).to_contain_text("2 d")
    plain = rows.filter(has_text="Invoice shows the wrong VAT")
    expect(plain.locator(".queue-overdue")).to_have_count(0)
    shade = "row => getComputedStyle(row.querySelector('td')).backgroundColor"
    assert stale_row.evaluate(shade) != plain.evaluate(shade)
    expect(rows.filter(has_text="Card declined at checkout")).to_contain_text("sam · ")
    page.screenshot(path=shots / "queue-1366.png", full_page=True)

    # A batch claimed from the queue's bulk actions; sam's proposal is left to him.
    for proposal in (charged, vat, login, sams):
        row = rows.filter(has_text=proposal.ticket.subject)
        row.locator("input.action-select").check()
    page.select_option("select[name=action]", "bulk_claim")
    page.click("button[name=index]")
    expect(page.locator(".messagelist .success")).to_have_text(
        "Claimed 3 proposals for 15 minutes."
    )
    expect(page.locator(".messagelist .warning")).to_contain_text(
        f"Left 1 proposal unclaimed: #{sams.ticket_id}: it is claimed by sam, for"
    )
    expect(rows.filter(has_text="Charged twice this month")).to_contain_text("you · ")
    assert TriageProposal.objects.get(pk=sams.pk).claimed_by == sam

    # Approve from the keyboard.
    page.goto(_review_url(live_server, charged))
    expect(page.locator("#claim-banner")).to_contain_text("You claimed this")
    page.screenshot(path=shots / "review-claimed-1366.png", full_page=True)
    page.keyboard.press("a")
    expect(page.locator(".messagelist")).to_have_text(f"Approved ticket #{charged.ticket_id}.")
    assert _status(charged) == TriageProposal.Status.APPROVED
    assert TriageProposal.objects.get(pk=charged.pk).claimed_by is None  # acting releases it

    # Edit and approve from the keyboard; what is typed in the note never fires a shortcut.
    page.goto(_review_url(live_server, vat))
    page.keyboard.press("e")
    note = page.locator("#edit-form textarea[name=note]")
    expect(note).to_be_focused()
    note.fill("")
    page.keyboard.type("a refund, reviewed; check the VAT rate")  # a, e, r, j, k: text
    assert _status(vat) == TriageProposal.Status.PENDING
    page.keyboard.press("Control+Enter")
    expect(page.locator(".messagelist")).to_have_text(
        f"Approved ticket #{vat.ticket_id} with your edits."
    )
    assert TicketNote.objects.get(ticket_id=vat.ticket_id).body == (
        "a refund, reviewed; check the VAT rate"
    )

    # Reject with only the right category, from the keyboard.
    page.goto(_review_url(live_server, login))
    page.keyboard.press("r")
    reason = page.locator("#reject-form textarea[name=reason]")
    expect(reason).to_be_focused()
    page.keyboard.type("A login problem, not billing.")
    page.get_by_label("Right category").select_option(label="Account access")
    expect(page.locator("#reject-example")).to_have_text(
        "Saved as an evaluation example: a proposal in Account access passes, whatever its urgency."
    )
    reason.focus()
    page.keyboard.press("Control+Enter")
    expect(page.locator(".messagelist")).to_have_text(
        f"Rejected ticket #{login.ticket_id}; saved as an evaluation example."
    )
    example = EvaluationExample.objects.get(proposal=login)
    assert (example.acceptable_outcomes, example.expected_category, example.expected_urgency) == (
        ["proposal"],
        "account-access",
        "",
    )

    # Next and previous from the keyboard, among the proposals nobody else holds.
    page.goto(_review_url(live_server, unclear))
    following = page.locator("#next-proposal").get_attribute("href")
    assert following is not None
    assert f"/{sams.pk}/" not in following
    page.keyboard.press("j")
    expect(page).to_have_url(f"{live_server.url}{following}")
    page.keyboard.press("k")
    expect(page).to_have_url(_review_url(live_server, unclear))

    # The clarification question: copied, sent through the helpdesk, recorded as sent.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.click("#copy-question")
    expect(page.locator("#copy-status")).to_have_text("Copied.")
    assert page.evaluate("() => navigator.clipboard.readText()") == "Which invoice?"
    page.click("#mark-sent")
    expect(page.locator(".messagelist")).to_have_text(
        f"Recorded that you sent ticket #{unclear.ticket_id}'s question."
    )
    expect(page.locator("#question-sent")).to_contain_text("Sent by rita")
    sent = TicketNote.objects.get(ticket_id=unclear.ticket_id)
    assert "Which invoice?" in sent.body
    assert sent.author == rita
    assert TraceStep.objects.filter(run=unclear.run, kind="question_sent", actor=rita).exists()
    assert _status(unclear) == TriageProposal.Status.PENDING  # the review is still to do

    # Sam's proposal: claimed, so no review until rita explicitly takes it over.
    page.goto(_review_url(live_server, sams))
    expect(page.locator("#claim-banner")).to_contain_text("Claimed by sam, for")
    expect(page.locator("#approve")).to_have_count(0)
    page.keyboard.press("a")
    assert _status(sams) == TriageProposal.Status.PENDING
    page.screenshot(path=shots / "review-claimed-by-other-1366.png", full_page=True)
    page.click("#take-over")
    expect(page.locator(".messagelist")).to_contain_text(
        f"Took ticket #{sams.ticket_id} over from sam, for"
    )
    taken = TraceStep.objects.get(run=sams.run, kind="claim", actor=rita)
    assert taken.payload["taken_over_from"] == "sam"
    page.click("#approve")
    assert _status(sams) == TriageProposal.Status.APPROVED

    # Undo an approval, and send the ticket back to the agent.
    page.goto(_review_url(live_server, charged))
    page.click("#undo")
    expect(page.locator("#proposal-status")).to_have_text("Approval undone")
    page.goto(f"{live_server.url}/admin/tickets/ticket/{charged.ticket_id}/change/")
    page.click("#rerun-triage", timeout=60_000)  # the offline agent triages it in process
    expect(page.locator(".messagelist")).to_contain_text("is queued for triage again")
    again = TriageProposal.objects.get(ticket_id=charged.ticket_id, status="pending")
    assert again.pk != charged.pk

    # A phone: the queue and the review page never scroll sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    for name, url in [
        ("queue", f"{live_server.url}/admin/agent/triageproposal/?status__exact=pending"),
        ("review-stale", _review_url(live_server, stale)),
        ("review-clarification", _review_url(live_server, unclear)),
    ]:
        page.goto(url)
        assert page.evaluate(FITS), name
        page.screenshot(path=shots / f"{name}-390.png", full_page=True)


def test_a_triage_admin_curates_examples_templates_categories_and_targets(
    page: Page, live_server: LiveServer, history: dict[str, Category], tmp_path: Path
) -> None:
    shots = _shots(tmp_path)
    reviewer = _staff("rita", SUPPORT_REVIEWERS)
    _staff("tara", TRIAGE_ADMINS)
    wrong = _proposal("Cannot log in after the reset", lambda pk: submit(pk, urgency="low"))
    from agent.review import ProposalEdits, proposal_reject

    proposal_reject(
        proposal=wrong,
        reviewer=reviewer,
        reason="A login problem.",
        correct=ProposalEdits(category=history["login"]),
    )
    example = EvaluationExample.objects.get(proposal=wrong)
    sign_in(page, live_server, "tara")

    # The correction a reviewer made: the admin adds the urgency it lacked.
    page.goto(f"{live_server.url}/admin/evaluations/evaluationexample/{example.pk}/change/")
    page.select_option("select[name=expected_urgency]", "high")
    page.fill("textarea[name=notes]", "Locked out: high.")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    example.refresh_from_db()
    assert (example.expected_category, example.expected_urgency, example.notes) == (
        "account-access",
        "high",
        "Locked out: high.",
    )

    # A reply template; one with an unknown placeholder is refused first.
    page.goto(f"{live_server.url}/admin/tickets/replytemplate/add/")
    page.fill("input[name=name]", "Locked out")
    page.select_option("select[name=category]", label="Account access")
    page.fill("textarea[name=body]", "Reset 2FA for {customer} ({ticket_ref}).")
    page.click("input[name=_save]")
    expect(page.locator(".field-body .errorlist")).to_contain_text("Unknown placeholder")
    assert not ReplyTemplate.objects.filter(name="Locked out").exists()
    page.fill("textarea[name=body]", "Reset 2FA for {customer_email} ({ticket_ref}).")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    assert ReplyTemplate.objects.get(name="Locked out").category == history["login"]

    # A category's keywords.
    page.goto(f"{live_server.url}/admin/tickets/category/{history['login'].pk}/change/")
    page.get_by_label("Keywords").fill("log in, password, 2fa, locked out")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    assert Category.objects.get(pk=history["login"].pk).keywords[-1] == "locked out"

    # The review targets, on their list; a zero is refused.
    page.goto(f"{live_server.url}/admin/agent/reviewtarget/")
    urgent = page.locator("#result_list tbody tr", has_text="Urgent")
    urgent.locator("input[name$=minutes]").fill("0")
    page.click("input[name=_save]")
    expect(page.locator(".errorlist")).to_contain_text("greater than or equal to 1")
    assert ReviewTarget.objects.get(urgency="urgent").minutes == 60
    urgent.locator("input[name$=minutes]").fill("30")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    assert ReviewTarget.objects.get(urgency="urgent").minutes == 30
    page.screenshot(path=shots / "review-targets-1366.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    assert page.evaluate(FITS)
    page.screenshot(path=shots / "review-targets-390.png", full_page=True)
