"""The review queue and review page in the admin. Every action calls the same services as the
API (``agent.review``); permissions are decided by ``agent.permissions``."""

import difflib
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from agent.admin.runs import ReadOnlyAdmin
from agent.models import Outcome, TriageProposal
from agent.permissions import user_can_review
from agent.review import (
    ProposalEdits,
    ReviewConflict,
    proposal_approve,
    proposal_reject,
    proposal_undo,
)
from agent.selectors import QUEUE_ORDER
from agent.workflows.support_triage.model_store import high_confidence_evidence
from tickets.models import Category, ChangeRecord, Urgency
from triage.validation import validate_text


class ReviewForm(forms.Form):
    """The review page's fields; which ones matter depends on the button pressed."""

    action = forms.ChoiceField(choices=[(a, a) for a in ("approve", "edit", "reject", "undo")])
    category = forms.ModelChoiceField(
        queryset=Category.objects.filter(is_active=True), required=False
    )
    urgency = forms.ChoiceField(choices=[("", "---------"), *Urgency.choices], required=False)
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}),
        required=False,
        max_length=5000,
        validators=[validate_text],
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=2000,
        validators=[validate_text],
    )
    # On reject: what would have been right. Blank by default, so that rejecting never
    # records the agent's own labels as the correction.
    correct_category = forms.ModelChoiceField(
        queryset=Category.objects.filter(is_active=True), required=False, label="Category"
    )
    correct_urgency = forms.ChoiceField(
        choices=[("", "---------"), *Urgency.choices], required=False, label="Urgency"
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("action") == "reject" and not (data.get("reason") or "").strip():
            self.add_error("reason", "Say why you reject it: the reason becomes an eval example.")
        return data


@admin.register(TriageProposal)
class TriageProposalAdmin(ReadOnlyAdmin):
    list_display = [
        "ticket_subject",
        "outcome",
        "urgency",
        "category",
        "confidence",
        "flag_list",
        "status",
        "created_at",
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
    search_fields = ["ticket__subject", "ticket__body", "reason", "draft_note"]
    list_select_related = ["ticket", "category"]
    # The queue order. The admin also orders other models' widgets for proposals by it (an
    # evaluation example's proposal, say), so it must resolve on a plain queryset.
    ordering = QUEUE_ORDER
    actions = ["bulk_approve"]

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        """Bulk approve says how often ``high`` was right on held-out data."""
        actions = super().get_actions(request)
        if "bulk_approve" in actions:
            function, name, description = actions["bulk_approve"]  # type: ignore[misc]
            evidence = high_confidence_evidence()
            actions["bulk_approve"] = (function, name, f"{description} ({evidence})")
        return actions

    @admin.display(description="ticket", ordering="ticket__subject")
    def ticket_subject(self, proposal: TriageProposal) -> str:
        return f"#{proposal.ticket_id} {proposal.ticket.subject}"

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
        proposal = self.get_object(request, unquote(object_id))
        if proposal is None:
            raise Http404(f"no proposal {object_id}")
        if not self.has_view_permission(request, proposal):
            raise PermissionDenied
        form = ReviewForm(
            initial={
                "category": proposal.category_id,
                "urgency": proposal.urgency,
                "note": proposal.draft_note,
            }
        )
        if request.method == "POST":
            if not user_can_review(request.user):
                raise PermissionDenied
            form = ReviewForm(request.POST)
            if form.is_valid():
                return self._act(request, proposal, form.cleaned_data)
        return TemplateResponse(
            request,
            "admin/agent/triageproposal/review.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": f"Review: {proposal}",
                "proposal": proposal,
                "ticket": proposal.ticket,
                "form": form,
                "can_review": user_can_review(request.user),
                "note_diff": _note_diff(proposal),
                "label_changes": _label_changes(proposal),
                "pending": self.get_queryset(request)
                .filter(status=TriageProposal.Status.PENDING)
                .count(),
            },
        )

    def _act(
        self, request: HttpRequest, proposal: TriageProposal, data: dict[str, Any]
    ) -> HttpResponse:
        action, user = data["action"], request.user
        try:
            if action == "approve":
                proposal_approve(proposal=proposal, reviewer=user)
            elif action == "edit":
                edits = ProposalEdits(
                    data.get("category"), data.get("urgency") or None, data.get("note") or None
                )
                proposal_approve(proposal=proposal, reviewer=user, edits=edits)
            elif action == "reject":
                correct = ProposalEdits(
                    data.get("correct_category"), data.get("correct_urgency") or None
                )
                proposal_reject(
                    proposal=proposal, reviewer=user, reason=data["reason"], correct=correct
                )
            else:
                proposal_undo(proposal=proposal, reviewer=user)
                messages.success(request, f"Approval of {proposal} undone.")
                return HttpResponseRedirect(request.path)
        except ReviewConflict as conflict:
            messages.error(request, str(conflict))
            return HttpResponseRedirect(request.path)
        messages.success(request, f"{proposal}: {action} done.")
        return HttpResponseRedirect(self._next_url(request, proposal))

    def _next_url(self, request: HttpRequest, done: TriageProposal) -> str:
        """The next proposal in the queue, so a reviewer never leaves the review page."""
        pending = self.get_queryset(request).filter(status=TriageProposal.Status.PENDING)
        following = pending.exclude(pk=done.pk).order_by(*QUEUE_ORDER).first()
        if following is None:
            return reverse("admin:agent_triageproposal_changelist") + "?status__exact=pending"
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
        messages.success(request, f"Approved {len(approved)} proposals.")
        if skipped:
            messages.warning(
                request,
                f"Left {len(skipped)} untouched (only pending, high-confidence proposals are "
                f"bulk-approved): " + ", ".join(f"#{p.ticket_id}" for p in skipped[:20]),
            )


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
