"""Forms for what Triage admins curate in the admin."""

import re
from typing import Any

from django import forms

from tickets.models import Category
from triage.validation import validate_text

KEYWORD_MAX_LENGTH = 60
KEYWORDS_EXAMPLE = "refund, charged twice, invoice"


class KeywordsField(forms.Field):
    """A list of short phrases, typed and shown as one comma-separated line (a line break
    separates too, for a pasted column)."""

    widget = forms.Textarea(attrs={"rows": 2})

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:
        text = "" if value in self.empty_values else str(value)
        parts = (part.strip() for part in re.split(r"[,\n]", text))
        return [part for part in parts if part]

    def validate(self, value: list[str]) -> None:
        super().validate(value)
        for keyword in value:
            validate_text(keyword)
            if any(mark in keyword for mark in '[]{}"'):
                raise forms.ValidationError(
                    "Separate the keywords with commas, without brackets or double quotes, "
                    f"e.g. {KEYWORDS_EXAMPLE}."
                )
            if len(keyword) > KEYWORD_MAX_LENGTH:
                raise forms.ValidationError(
                    f"Keep each keyword to {KEYWORD_MAX_LENGTH} characters: "
                    f"“{keyword[:30]}…” has {len(keyword)}."
                )
        seen: set[str] = set()
        for keyword in value:
            if keyword.casefold() in seen:
                raise forms.ValidationError(f"“{keyword}” is listed twice.")
            seen.add(keyword.casefold())


class CategoryForm(forms.ModelForm):
    keywords = KeywordsField(
        required=False,
        help_text="Cue words or short phrases typical of this category, separated by commas, "
        f"e.g. {KEYWORDS_EXAMPLE}.",
    )

    class Meta:
        model = Category
        fields = ["slug", "name", "description", "routing_rules", "keywords", "is_active"]
