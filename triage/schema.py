"""OpenAPI schema post-processing (drf-spectacular's ``POSTPROCESSING_HOOKS``)."""

from typing import Any

BLANK = {"type": "string", "maxLength": 0}


def closed_request_bodies(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Request bodies take no other fields than their own (``KnownFieldsSerializer`` refuses
    the rest with a 400): ``additionalProperties: false`` on every request component."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False
    return result


def blank_as_any_of(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """A text field that may be blank is described as ``oneOf: [the field, a blank string]``;
    when the field's own pattern allows a blank string too, ``""`` matches both, and ``oneOf``
    (exactly one) says it is invalid while the API accepts it. ``anyOf`` says what is meant."""

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if BLANK in node.get("oneOf", ()):
                node["anyOf"] = node.pop("oneOf")
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(result)
    return result
