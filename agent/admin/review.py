"""The review queue and review page in the admin. Every action calls the same services as the
API (``agent.review``); permissions are decided by ``agent.permissions``."""

import difflib
from typing import Any

from django import forms
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
from django.utils import timezone
from django.utils.html import format_html_join

from agent.admin.forms import EditForm, RejectForm
from agent.admin.runs import ReadOnlyAdmin
from agent.models import Outcome, TriageProposal
from agent.permissions import user_can_review
from agent.review import (
    ReviewConflict,
    proposal_approve,
    proposal_reject,
    proposal_undo,
)
from agent.selectors import QUEUE_ORDER, Queue, agent_settings_get
from agent.workflows.support_triage.model_store import high_confidence_evidence
from tickets.models import Category, ChangeRecord, Urgency

REVIEW_QUEUE_TITLE = "Review queue: drafts awaiting review, most urgent first"


def review_queue_url() -> str:
    """Where reviewers work: the pending proposals, in the queue's order."""
    return reverse("admin:agent_triageproposal_changelist") + "?status__exact=pending"


def manual_queue_url() -> str:
    """The tickets that need a person and have no draft to review."""
    return reverse("admin:tickets_ticket_changelist") + f"?queue={Queue.MANUAL}"


# The review page's buttons (edit and reject submit their own form; approve and undo none).
REVIEW_ACTIONS = ("approve", "edit", "reject", "undo")


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
        "created",
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
    actions = ["bulk_approve"]

    class Media:
        css = {"all": ["agent/review.css"]}

    def get_list_display(self, request: HttpRequest) -> Any:
        """Without the status column when the list shows one review state (the queue: pending):
        the filter says it, and the columns must fit beside the navigation."""
        columns = list(super().get_list_display(request))
        return [c for c in columns if c != "status"] if "status__exact" in request.GET else columns

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

    @admin.display(description="created", ordering="created_at")
    def created(self, proposal: TriageProposal) -> str:
        return timezone.localtime(proposal.created_at).strftime("%Y-%m-%d %H:%M")

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
                "unsaved": _unsaved(unsaved)
                if proposal.status != TriageProposal.Status.PENDING
                else [],
                "can_review": user_can_review(request.user),
                "note_diff": _note_diff(proposal),
                "similar_rows": similar_rows(proposal),
                "label_changes": _label_changes(proposal),
                "pending": pending.count(),
            },
            status=status,
        )

    def _next_url(self, request: HttpRequest, done: TriageProposal) -> str:
        """The next proposal in the queue, so a reviewer never leaves the review page."""
        pending = self.get_queryset(request).filter(status=TriageProposal.Status.PENDING)
        following = pending.exclude(pk=done.pk).order_by(*QUEUE_ORDER).first()
        if following is None:
            return review_queue_url()
        return reverse("admin:agent_triageproposal_change", args=[following.pk])

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
                "proposals are bulk-approved): "
                + ", ".join(f"#{p.ticket_id}" for p in skipped[:20])
                + ".",
            )


def _ticket(proposal: TriageProposal) -> str:
    return f"ticket {proposal.ticket.reference}"


def _count(items: list[Any], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _action_verb(action: str) -> str:
    return {"edit": "approve", "undo": "undo the approval of"}.get(action, action)


def _unsaved(form: forms.Form | None) -> list[tuple[str, str]]:
    """What the reviewer submitted in ``form``, label and value, for the fields they filled."""
    if form is None or not form.is_valid():
        return []
    return [
        (str(form.fields[name].label or name).capitalize(), str(value))
        for name, value in form.cleaned_data.items()
        if value
    ]


def similar_rows(proposal: TriageProposal) -> list[dict[str, Any]]:
    """The similar tickets the agent was shown, as the review page lists them: the category by
    name, and the match as a percentage of the closest ticket's score (retrieval scores are
    BM25, whose scale depends on the query, so only their ratio reads the same everywhere; it
    is also what the offline model's vote weighs)."""
    shown = proposal.similar_tickets or []
    slugs = {row.get("category") for row in shown}
    names = dict(Category.objects.filter(slug__in=slugs).values_list("slug", "name"))
    best = max((float(row.get("similarity") or 0) for row in shown), default=0.0)
    return [
        {
            **row,
            "category_name": names.get(row.get("category"), row.get("category") or "-"),
            "match": round(100 * float(row.get("similarity") or 0) / best) if best > 0 else None,
        }
        for row in shown
    ]


def _note_diff(proposal: TriageProposal) -> list[tuple[str, str]]:
    """The draft against the published note, line by line, for edited approvals."""
    note = proposal.published_note
    if proposal.status != TriageProposal.Status.EDITED or note is None:
        return []
    lines = difflib.ndiff(proposal.draft_note.splitlines(), note.body.splitlines())
    kinds = {"+": "added", "-": "removed", " ": "same"}
    return [(kinds[line[0]], line[2:]) for line in lines if line[0] in kinds]


def _label_changes(proposal: TriageProposal) -> list[tuple[str, str, str]]:
    """What the reviewer changed, read from the approval's journal (not the ticket's current
    labels, which later edits may have moved on)."""
    if proposal.status != TriageProposal.Status.EDITED or proposal.change_set is None:
        return []
    record = ChangeRecord.objects.filter(
        change_set=proposal.change_set, target="tickets.Ticket"
    ).first()
    if record is None:
        return []
    approved = Category.objects.filter(pk=record.after.get("category_id")).first()
    pairs = [
        ("category", str(proposal.category or "-"), str(approved or "-")),
        ("urgency", proposal.urgency or "-", record.after.get("urgency") or "-"),
    ]
    return [pair for pair in pairs if pair[1] != pair[2]]
