"""What the review page shows beside the proposal: who holds its claim, what an edited
approval changed, and what a reviewer typed into a form whose action failed."""

import difflib
from typing import Any

from django import forms
from django.conf import settings
from django.utils import timezone

from agent.models import TriageProposal
from agent.selectors import (
    claim_held_by_other,
    claim_holder,
    claim_lapses_at,
    claim_summary,
    duration_words,
)
from tickets.models import Category, ChangeRecord


def claim_context(proposal: TriageProposal, viewer: Any) -> dict[str, Any]:
    """Who holds the proposal: ``held_by_other`` hides the review forms until it is taken
    over."""
    now, holder = timezone.now(), claim_holder(proposal=proposal)
    since, lapses = proposal.claimed_at, claim_lapses_at(proposal)
    live = holder is not None and since is not None and lapses is not None
    return {
        "holder": holder,
        "summary": claim_summary(proposal=proposal),
        "mine": holder is not None and holder.pk == viewer.pk,
        "held_by_other": claim_held_by_other(proposal=proposal, reviewer=viewer),
        "held": duration_words(now - since) if live and since else "",
        "left": duration_words(lapses - now) if live and lapses else "",
        "minutes": settings.TRIAGE_CLAIM_MINUTES,
    }


def unsaved_values(form: forms.Form | None) -> list[tuple[str, str]]:
    """What the reviewer submitted in ``form``, label and value, for the fields they filled."""
    if form is None or not form.is_valid():
        return []
    return [
        (str(form.fields[name].label or name).capitalize(), str(value))
        for name, value in form.cleaned_data.items()
        if value
    ]


def note_diff(proposal: TriageProposal) -> list[tuple[str, str]]:
    """The draft against the published note, line by line, for edited approvals."""
    note = proposal.published_note
    if proposal.status != TriageProposal.Status.EDITED or note is None:
        return []
    lines = difflib.ndiff(proposal.draft_note.splitlines(), note.body.splitlines())
    kinds = {"+": "added", "-": "removed", " ": "same"}
    return [(kinds[line[0]], line[2:]) for line in lines if line[0] in kinds]


def label_changes(proposal: TriageProposal) -> list[tuple[str, str, str]]:
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
