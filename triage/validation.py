"""Text that may be stored: one rule for every text field, wherever it comes from.

PostgreSQL cannot store a NUL character, a lone surrogate cannot be encoded at all, and
bidirectional overrides and other control characters make a stored text read differently from
what it holds (U+202E turns ``txt.exe`` into ``exe.txt`` on screen). Tab, newline and carriage
return are text; so are zero-width and tag characters, which the injection checks read and
flag rather than refuse.
"""

import re
from typing import Any

from django.core.exceptions import ValidationError
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

_CONTROL_CHARACTERS = (
    r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f"  # C0 and C1 controls, but tab,
    # newline and return
    r"\u202a-\u202e\u2066-\u2069"  # bidirectional embeddings, overrides and isolates
)
_SURROGATES = r"\ud800-\udfff"  # never valid on their own in a Python str
_UNSAFE = re.compile(f"[{_CONTROL_CHARACTERS}{_SURROGATES}]")
# The rule as an OpenAPI ``pattern``, without the surrogates: they are not characters, and
# regular expression engines that work on characters (Rust's, which schemathesis uses) refuse a
# pattern that names them.
TEXT_PATTERN = f"^[^{_CONTROL_CHARACTERS}]*$"


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


class StrictCharField(serializers.CharField):
    """A text field of the API that takes only a JSON string: DRF's ``CharField`` turns ``0``
    into ``"0"``, so a client that sends the wrong type has it stored as if it had meant it."""

    default_error_messages = {"invalid": "Not a valid string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class StrictCharFieldSchema(OpenApiSerializerFieldExtension):
    """In the OpenAPI schema, a text field says which characters it refuses."""

    target_class = StrictCharField

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema: dict[str, Any] = auto_schema._map_serializer_field(
            self.target, direction, bypass_extensions=True
        )
        return {**schema, "pattern": TEXT_PATTERN}


class KnownFieldsSerializer(serializers.Serializer):
    """A request body that names only its own fields: a misspelt field (``requestor_email``)
    is a 400 that says so, not a value silently dropped. The schema says the same
    (``additionalProperties: false``, ``triage.schema``)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict) and (unknown := sorted(set(data) - set(self.fields))):
            raise serializers.ValidationError({key: ["Unknown field."] for key in unknown})
        return super().to_internal_value(data)
