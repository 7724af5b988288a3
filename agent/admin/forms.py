"""The review page's forms: one per button, so that a failed action keeps what the reviewer
typed into it and leaves the other form as it was."""

from django import forms

from agent.review import ProposalEdits
from tickets.models import Category, Urgency
from triage.validation import validate_text

URGENCY_CHOICES = [("", "---------"), *Urgency.choices]


class EditForm(forms.Form):
    """*Save edits and approve*: the labels and the note to publish instead of the draft's."""

    category = forms.ModelChoiceField(
        queryset=Category.objects.filter(is_active=True), required=False
    )
    urgency = forms.ChoiceField(choices=URGENCY_CHOICES, required=False)
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}),
        required=False,
        max_length=5000,
        validators=[validate_text],
    )

    def edits(self) -> ProposalEdits:
        data = self.cleaned_data
        return ProposalEdits(data["category"], data["urgency"] or None, data["note"] or None)


class RejectForm(forms.Form):
    """*Reject*: why, and optionally what would have been right. The labels start blank, so
    that rejecting never records the agent's own labels as the correction."""

    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=2000,
        validators=[validate_text],
    )
    correct_category = forms.ModelChoiceField(
        queryset=Category.objects.filter(is_active=True), required=False, label="Category"
    )
    correct_urgency = forms.ChoiceField(choices=URGENCY_CHOICES, required=False, label="Urgency")

    def clean_reason(self) -> str:
        reason: str = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(
                "Say why you reject it: the reason becomes an eval example."
            )
        return reason

    def correct(self) -> ProposalEdits:
        data = self.cleaned_data
        return ProposalEdits(data["correct_category"], data["correct_urgency"] or None)
