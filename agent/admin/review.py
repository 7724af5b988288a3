"""The review queue and review page in the admin. Every action calls the same services as the
API (``agent.review``); permissions are decided by ``agent.permissions``."""

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html_join

from agent.admin.forms import EditForm, RejectForm
from agent.admin.review_page import (
    claim_context,
    label_changes,
    note_diff,
    similar_rows,
    unsaved_values,
)
from agent.admin.runs import ReadOnlyAdmin
from agent.admin.waiting import claim_cell, proposal_wait, waiting_cell
from agent.claims import proposal_claim, proposal_release, proposals_claim
from agent.clarifications import SENDABLE_STATUSES, clarification_mark_sent
from agent.models import Outcome, TriageProposal
from agent.permissions import user_can_review
from agent.review import (
    ReviewConflict,
    proposal_approve,
    proposal_reject,
    proposal_undo,
)
from agent.selectors import (
    QUEUE_ORDER,
    Queue,
    agent_settings_get,
    claim_summary,
    proposals_open_to,
    proposals_with_target,
)
from agent.workflows.support_triage.model_store import high_confidence_evidence
from tickets.models import Urgency

REVIEW_QUEUE_TITLE = "Review queue: drafts awaiting review, most urgent first"


def review_queue_url() -> str:
    """Where reviewers work: the pending proposals, in the queue's order."""
    return reverse("admin:agent_triageproposal_changelist") + "?status__exact=pending"


def manual_queue_url() -> str:
    """The tickets that need a person and have no draft to review."""
    return reverse("admin:tickets_ticket_changelist") + f"?queue={Queue.MANUAL}"


# The review page's buttons (edit and reject submit their own form; approve and undo none).
REVIEW_ACTIONS = ("approve", "edit", "reject", "undo")
# Buttons that change who works on the proposal, or record what the reviewer did outside the
# app; the page stays where it is after them.
PAGE_ACTIONS = ("claim", "take_over", "release", "mark_sent")


@admin.register(TriageProposal)
class TriageProposalAdmin(ReadOnlyAdmin):
    list_display = [
        "ticket_subject",
        "needs",
        "outcome",
        "urgency",
        "category",
        "confidence",
        "flag_list",
        "status",
        "waiting",
    ]
    list_display_links = ["ticket_subject"]
    list_filter = [
        "status",
        "outcome",
        "confidence",
        "category",
        "urgency",
        "injection_suspected",
        "requires_human_action",
        "degraded_context",
    ]
    search_fields = [
        "ticket__subject",
        "ticket__body",
        "ticket__requester_email",
        "reason",
        "draft_note",
    ]
    list_select_related = ["ticket", "category"]
    # The queue order. The admin also orders other models' widgets for proposals by it (an
    # evaluation example's proposal, say), so it must resolve on a plain queryset.
    ordering = QUEUE_ORDER
    actions = ["bulk_approve", "bulk_claim"]

    class Media:
        css = {"all": ["agent/review.css"]}

    def get_list_display(self, request: HttpRequest) -> Any:
        """Without the status column when the list shows one review state (the queue: pending):
        the filter says it, and the columns must fit beside the navigation."""
        columns = list(super().get_list_display(request))
        if "status__exact" in request.GET:
            columns = [c for c in columns if c != "status"]
        return [*columns, _claim_column(request.user)]

    def get_queryset(self, request: HttpRequest) -> QuerySet[TriageProposal]:
        """Each row with its urgency's review target, for the *waiting* column."""
        return proposals_with_target(super().get_queryset(request).select_related("claimed_by"))

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        """Bulk approve says how often ``high`` was right on held-out data."""
        actions = super().get_actions(request)
        if "bulk_approve" in actions:
            function, name, description = actions["bulk_approve"]  # type: ignore[misc]
            evidence = high_confidence_evidence()
            actions["bulk_approve"] = (function, name, f"{description} ({evidence})")
        return actions

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        """The queue says what it is, and whether the agent is switched off."""
        pending = request.GET.get("status__exact") == TriageProposal.Status.PENDING
        context = {
            "title": REVIEW_QUEUE_TITLE if pending else "Triage proposals, most urgent first",
            "agent_switched_off": not agent_settings_get().agent_enabled,
            "manual_queue_url": manual_queue_url(),
            "claim_minutes": settings.TRIAGE_CLAIM_MINUTES,
            **(extra_context or {}),
        }
        return super().changelist_view(request, context)

    @admin.display(description="needs")
    def needs(self, proposal: TriageProposal) -> str:
        """Marks the rows a person should see first; the queue's style highlights them."""
        marks = []
        if proposal.requires_human_action:
            marks.append(("flagged", "a person"))
        if proposal.injection_suspected:
            marks.append(("flagged", "injection?"))
        if proposal.urgency == Urgency.URGENT:
            marks.append(("urgent", "urgent"))
        if not marks:
            return "-"
        return format_html_join(" ", '<span class="queue-mark queue-{}">{}</span>', marks)

    @admin.display(description="ticket", ordering="ticket__subject")
    def ticket_subject(self, proposal: TriageProposal) -> str:
        return f"#{proposal.ticket_id} {proposal.ticket.subject}"

    @admin.display(description="waiting", ordering="ticket__created_at")
    def waiting(self, proposal: TriageProposal) -> str:
        """Since the ticket came in, against its urgency's review target."""
        return waiting_cell(proposal)

    @admin.display(description="flags")
    def flag_list(self, proposal: TriageProposal) -> str:
        return ", ".join(flag.replace("_", " ") for flag in proposal.flags) or "-"

    # --- the review page -----------------------------------------------------------------

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The review page. A failed action shows the page again with what the reviewer
        submitted and why it failed; only a done action moves on."""
        proposal = self.get_object(request, unquote(object_id))
        if proposal is None:
            raise Http404(f"no proposal {object_id}")
        if not self.has_view_permission(request, proposal):
            raise PermissionDenied
        edit_form = EditForm(
            initial={
                "category": proposal.category_id,
                "urgency": proposal.urgency,
                "note": proposal.draft_note,
            }
        )
        reject_form = RejectForm()
        if request.method != "POST":
            return self._review_page(request, proposal, edit_form, reject_form)
        if not user_can_review(request.user):
            raise PermissionDenied
        action = request.POST.get("action", "")
        if action in PAGE_ACTIONS:
            return self._page_action(request, proposal, action)
        if action not in REVIEW_ACTIONS:
            return HttpResponseBadRequest("Unknown review action.")
        submitted: EditForm | RejectForm | None = None
        if action == "edit":
            submitted = edit_form = EditForm(request.POST)
        elif action == "reject":
            submitted = reject_form = RejectForm(request.POST)
        if submitted is not None and not submitted.is_valid():
            return self._review_page(request, proposal, edit_form, reject_form)
        try:
            done = self._act(request, proposal, action, submitted)
        except ReviewConflict as conflict:
            messages.error(
                request, f"Could not {_action_verb(action)} {_ticket(proposal)}: {conflict}."
            )
            proposal = self.get_object(request, unquote(object_id)) or proposal
            return self._review_page(
                request, proposal, edit_form, reject_form, unsaved=submitted, status=409
            )
        if action == "undo":
            return HttpResponseRedirect(request.path)
        return HttpResponseRedirect(self._next_url(request, done))

    def _page_action(
        self, request: HttpRequest, proposal: TriageProposal, action: str
    ) -> HttpResponse:
        """Claim, take over, release, or record the question sent; then the same page."""
        user, ticket = request.user, _ticket(proposal)
        try:
            if action == "mark_sent":
                clarification_mark_sent(proposal=proposal, reviewer=user)
                messages.success(request, f"Recorded that you sent {ticket}'s question.")
            elif action == "release":
                proposal_release(proposal=proposal, reviewer=user)
                messages.success(request, f"Released your claim on {ticket}.")
            else:
                take_over = action == "take_over"
                holder = claim_summary(proposal=proposal)
                proposal_claim(proposal=proposal, reviewer=user, take_over=take_over)
                done = f"Took {ticket} over from {holder}" if take_over else f"Claimed {ticket}"
                minutes = settings.TRIAGE_CLAIM_MINUTES
                messages.success(request, f"{done}; it is yours for {minutes} min.")
        except ReviewConflict as conflict:
            messages.error(request, f"Could not {action.replace('_', ' ')} {ticket}: {conflict}.")
        return HttpResponseRedirect(request.path)

    def _act(
        self,
        request: HttpRequest,
        proposal: TriageProposal,
        action: str,
        submitted: EditForm | RejectForm | None,
    ) -> TriageProposal:
        """Calls the action's service and says what it did, as a sentence."""
        user, ticket = request.user, _ticket(proposal)
        if isinstance(submitted, EditForm):
            done = proposal_approve(proposal=proposal, reviewer=user, edits=submitted.edits())
            if done.status == TriageProposal.Status.EDITED:
                messages.success(request, f"Approved {ticket} with your edits.")
            else:
                messages.success(
                    request, f"Approved {ticket} as drafted: your edits changed nothing."
                )
        elif isinstance(submitted, RejectForm):
            done = proposal_reject(
                proposal=proposal,
                reviewer=user,
                reason=submitted.cleaned_data["reason"],
                correct=submitted.correct(),
            )
            messages.success(request, f"Rejected {ticket}; saved as an evaluation example.")
        elif action == "approve":
            done = proposal_approve(proposal=proposal, reviewer=user)
            messages.success(request, f"Approved {ticket}.")
        else:
            done = proposal_undo(proposal=proposal, reviewer=user)
            messages.success(request, f"Undid the approval of {ticket}.")
        return done

    def _review_page(
        self,
        request: HttpRequest,
        proposal: TriageProposal,
        edit_form: EditForm,
        reject_form: RejectForm,
        *,
        unsaved: forms.Form | None = None,
        status: int = 200,
    ) -> TemplateResponse:
        pending = self.get_queryset(request).filter(status=TriageProposal.Status.PENDING)
        previous, following = self._neighbours(request, proposal)
        return TemplateResponse(
            request,
            "admin/agent/triageproposal/review.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": f"Review: {proposal}",
                "proposal": proposal,
                "ticket": proposal.ticket,
                "edit_form": edit_form,
                "reject_form": reject_form,
                "reject_sentences": reject_form.example_sentences(proposal.outcome),
                "reject_sentence": reject_form.example_sentence(proposal.outcome),
                # Typed into a form whose action could no longer be done: shown, not lost.
                "unsaved": unsaved_values(unsaved)
                if proposal.status != TriageProposal.Status.PENDING
                else [],
                "can_review": user_can_review(request.user),
                "note_diff": note_diff(proposal),
                "similar_rows": similar_rows(proposal),
                "label_changes": label_changes(proposal),
                "pending": pending.count(),
                "wait": proposal_wait(proposal),
                "claim": claim_context(proposal, request.user),
                "previous_url": previous,
                "next_url": following,
                "can_mark_sent": proposal.outcome == Outcome.CLARIFICATION
                and proposal.question_sent_at is None
                and proposal.status in SENDABLE_STATUSES,
            },
            status=status,
        )

    def _neighbours(
        self, request: HttpRequest, proposal: TriageProposal
    ) -> tuple[str | None, str | None]:
        """The review pages before and after this one in the queue's order, among pending
        proposals no other reviewer holds (the keyboard's previous and next)."""
        pending = self.get_queryset(request).filter(status=TriageProposal.Status.PENDING)
        open_ids = list(
            proposals_open_to(reviewer=request.user, proposals=pending)
            .order_by(*QUEUE_ORDER)
            .values_list("pk", flat=True)
        )
        if proposal.pk not in open_ids:
            return None, _review_url(open_ids[0]) if open_ids else None
        at = open_ids.index(proposal.pk)
        previous = _review_url(open_ids[at - 1]) if at > 0 else None
        following = _review_url(open_ids[at + 1]) if at + 1 < len(open_ids) else None
        return previous, following

    def _next_url(self, request: HttpRequest, done: TriageProposal) -> str:
        """The next proposal in the queue, so a reviewer never leaves the review page."""
        pending = self.get_queryset(request).filter(status=TriageProposal.Status.PENDING)
        open_to_me = proposals_open_to(reviewer=request.user, proposals=pending)
        following = open_to_me.exclude(pk=done.pk).order_by(*QUEUE_ORDER).first()
        if following is None:
            return review_queue_url()
        return _review_url(following.pk)

    # --- bulk approve ----------------------------------------------------------------------

    @admin.action(description="Approve selected high-confidence proposals")
    def bulk_approve(self, request: HttpRequest, queryset: QuerySet[TriageProposal]) -> None:
        if not user_can_review(request.user):
            raise PermissionDenied
        approved, skipped = [], []
        for proposal in queryset:
            if not (
                proposal.status == TriageProposal.Status.PENDING
                and proposal.outcome == Outcome.PROPOSAL
                and proposal.confidence == "high"
            ):
                skipped.append(proposal)
                continue
            try:
                proposal_approve(proposal=proposal, reviewer=request.user)
                approved.append(proposal)
            except ReviewConflict:
                skipped.append(proposal)
        messages.success(request, f"Approved {_count(approved, 'proposal')}.")
        if skipped:
            messages.warning(
                request,
                f"Left {_count(skipped, 'proposal')} untouched (only pending, high-confidence "
                "proposals that no other reviewer has claimed are bulk-approved): "
                + ", ".join(f"#{p.ticket_id}" for p in skipped[:20])
                + ".",
            )

    @admin.action(description="Claim the selected proposals (yours for a while)")
    def bulk_claim(self, request: HttpRequest, queryset: QuerySet[TriageProposal]) -> None:
        """Claims each pending proposal no other reviewer holds; says which were left."""
        if not user_can_review(request.user):
            raise PermissionDenied
        claimed, left = proposals_claim(proposals=list(queryset), reviewer=request.user)
        messages.success(
            request,
            f"Claimed {_count(claimed, 'proposal')} for {settings.TRIAGE_CLAIM_MINUTES} minutes.",
        )
        if left:
            messages.warning(
                request,
                f"Left {_count(left, 'proposal')} unclaimed: "
                + "; ".join(f"#{p.ticket_id}: {why}" for p, why in left[:20])
                + ".",
            )


def _claim_column(viewer: Any) -> Any:
    """The *claimed by* column, for the viewer (who reads their own claims as ``you``)."""

    @admin.display(description="claimed by")
    def claimed_by(proposal: TriageProposal) -> str:
        return claim_cell(proposal, viewer)

    return claimed_by


def _review_url(pk: int) -> str:
    return reverse("admin:agent_triageproposal_change", args=[pk])


def _ticket(proposal: TriageProposal) -> str:
    return f"ticket {proposal.ticket.reference}"


def _count(items: list[Any], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _action_verb(action: str) -> str:
    return {"edit": "approve", "undo": "undo the approval of"}.get(action, action)
