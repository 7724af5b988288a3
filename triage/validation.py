"""Text that may be stored: one rule for every text field, wherever it comes from.

PostgreSQL cannot store a NUL character, a lone surrogate cannot be encoded at all, and
bidirectional overrides and other control characters make a stored text read differently from
what it holds (U+202E turns ``txt.exe`` into ``exe.txt`` on screen). Tab, newline and carriage
return are text; so are zero-width and tag characters, which the injection checks read and
flag rather than refuse.
"""

import re

from django.core.exceptions import ValidationError

_UNSAFE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"  # C0 and C1 controls, but tab, newline, return
    "\u202a-\u202e\u2066-\u2069"  # bidirectional embeddings, overrides and isolates
    "\ud800-\udfff]"  # surrogates: never valid on their own in a Python str
)


def text_problem(value: str) -> str | None:
    """Why ``value`` may not be stored, or None."""
    found = _UNSAFE.search(value)
    if found is None:
        return None
    return f"Contains the control character U+{ord(found.group()):04X}, which is not allowed."


def validate_text(value: str) -> None:
    """A Django validator for model and form fields."""
    if problem := text_problem(value):
        raise ValidationError(problem, code="control_character")
