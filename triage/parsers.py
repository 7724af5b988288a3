"""The API's one request parser: JSON, bounded in size and depth, every string checked.

Every API body passes here before any serializer or database sees it, so the limits hold for
every endpoint: the size (also for chunked requests, which declare no length), the nesting
depth (a few thousand brackets would otherwise exhaust Python's recursion), and the text rule
of ``triage.validation`` for every string, keys included (a NUL in a slug would reach
PostgreSQL as a query parameter and fail there).
"""

import re
from io import BytesIO
from typing import Any

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError, ValidationError
from rest_framework.parsers import JSONParser

from triage.validation import text_problem

# A JSON string literal (escapes included), so that brackets inside strings are not counted.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_BRACKET = re.compile(rb"[\[\]{}]")


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "too_large"


class SafeJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit: int = settings.API_MAX_BODY_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise RequestTooLarge(f"Request body too large: the limit is {limit} bytes.")
        depth_limit: int = settings.API_MAX_JSON_DEPTH
        if json_depth(raw, stop_after=depth_limit) > depth_limit:
            raise ParseError(f"JSON nested deeper than {depth_limit} levels.")
        data = super().parse(BytesIO(raw), media_type, parser_context)
        problems: dict[str, list[str]] = {}
        _check(data, "", problems)
        if problems:
            raise ValidationError(problems)
        return data


def json_depth(raw: bytes, *, stop_after: int) -> int:
    """The deepest nesting of arrays and objects in ``raw`` (stops counting past
    ``stop_after``); malformed JSON is the parser's to report."""
    depth = deepest = 0
    for bracket in _BRACKET.finditer(_STRING.sub(b'""', raw)):
        if bracket.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > stop_after:
                break
        else:
            depth -= 1
    return deepest


def _check(value: Any, path: str, problems: dict[str, list[str]]) -> None:
    """Every string of the parsed body (keys too), against the text rule; ``problems`` maps
    each offending field (its path, ``a.b.0``) to the reason."""
    if isinstance(value, str):
        if problem := text_problem(value):
            problems.setdefault(path or "non_field_errors", []).append(problem)
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if problem := text_problem(str(key)):
                problems.setdefault(path or "non_field_errors", []).append(f"A key: {problem}")
                continue
            _check(item, child, problems)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check(item, f"{path}.{index}" if path else str(index), problems)
