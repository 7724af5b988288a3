"""The review page's forms: one per button, so that a failed action keeps what the reviewer
typed into it and leaves the other form as it was."""

from django import forms

from agent.models import Outcome
from agent.review import ProposalEdits, rejection_expectation
from tickets.models import Category, Urgency
from triage.validation import validate_text

URGENCY_CHOICES = [("", "---------"), *Urgency.choices]

OUTCOME_PHRASES = {
    Outcome.PROPOSAL: "a proposal",
    Outcome.CLARIFICATION: "a clarification question",
    Outcome.REFUSAL: "a refusal",
    Outcome.SAFE_STOP: "a safe stop",
}
# What Reject saves, by the right labels given. The page's script fills in the placeholders as
# the reviewer picks, so these are the page's only wording of it.
EXAMPLE_SENTENCES = {
    "both": "Saved as an evaluation example: a proposal in {category} with {urgency} urgency "
    "passes.",
    "category": "Saved as an evaluation example: a proposal in {category} passes, whatever its "
    "urgency.",
    "urgency": "Saved as an evaluation example: a proposal with {urgency} urgency passes, "
    "whatever its category.",
}


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
        queryset=Category.objects.filter(is_active=True), required=False, label="Right category"
    )
    correct_urgency = forms.ChoiceField(
        choices=URGENCY_CHOICES, required=False, label="Right urgency"
    )

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

    def example_sentences(self, outcome: str) -> dict[str, str]:
        """The sentence for each choice of right labels (``both``, ``category``, ``urgency``,
        with placeholders) and for none (``none``: which outcomes pass and which fails)."""
        expected = rejection_expectation(outcome=outcome, correct=None)
        *others, last = [OUTCOME_PHRASES[Outcome(o)] for o in expected.outcomes]
        passes = f"{', '.join(others)} or {last}" if others else last
        failed = OUTCOME_PHRASES[Outcome(outcome)]
        none = f"Saved as an evaluation example: {passes} passes; {failed} fails."
        return {**EXAMPLE_SENTENCES, "none": none}

    def example_sentence(self, outcome: str) -> str:
        """What Reject will save with the labels submitted so far (none on a fresh page)."""
        data = getattr(self, "cleaned_data", {})
        category, urgency = data.get("correct_category"), data.get("correct_urgency")
        expected = rejection_expectation(
            outcome=outcome, correct=ProposalEdits(category, urgency or None)
        )
        key = (
            ("both" if expected.urgency else "category")
            if expected.category
            else ("urgency" if expected.urgency else "none")
        )
        return self.example_sentences(outcome)[key].format(
            category=category, urgency=Urgency(urgency).label.lower() if urgency else ""
        )
