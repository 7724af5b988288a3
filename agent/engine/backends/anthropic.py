"""Claude through the official ``anthropic`` SDK.

One SDK call per turn and no SDK retries: the loop retries, traced. The static prefix (tools,
system prompt, static context) carries a prompt-cache marker, and every tool is ``strict``, so
the API constrains tool names and inputs to their schemas. Whatever the SDK or the server does
wrong becomes one of the three ``ModelError`` kinds: the loop never sees an SDK exception and
never a half-parsed turn.
"""

import email.utils
import json
import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import anthropic
from django.conf import settings
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.engine.backends.base import (
    MalformedReplyError,
    ModelError,
    ModelRequest,
    ModelTurn,
    PermanentModelError,
    TransientModelError,
    Usage,
)
from agent.engine.tools import Tool

MAX_RETRY_AFTER_SECONDS = 60.0
# Worth another attempt besides every 5xx (529 "overloaded" included): the statuses the SDK's
# own retry policy retries. Every other 4xx (400, 401, 403, 404, 413, 422, ...) is permanent.
TRANSIENT_STATUSES = frozenset({408, 409, 429})
_STATUS_LABELS = {408: "request timeout", 409: "conflict", 429: "rate limited", 529: "overloaded"}


class AnthropicBackend:
    name = "anthropic"

    def __init__(self, *, client: anthropic.Anthropic, model: str) -> None:
        self._client = client
        self.model = model

    def complete(self, request: ModelRequest) -> ModelTurn:
        """Asks Claude for one turn. Raises ``TransientModelError``, ``MalformedReplyError`` or
        ``PermanentModelError``, and nothing else."""
        params = self._params(request)
        started = time.perf_counter()
        try:
            reply = self._client.messages.create(**params)
        except anthropic.APIResponseValidationError as error:
            raise MalformedReplyError(f"the reply failed the SDK's validation: {error}") from error
        except anthropic.APIStatusError as error:
            raise _status_error(error) from error
        except anthropic.APIConnectionError as error:
            raise _connection_error(error) from error
        except json.JSONDecodeError as error:
            raise MalformedReplyError(f"the reply body is not valid JSON ({error})") from error
        except ValidationError as error:
            raise MalformedReplyError(
                f"the reply body could not be read: {_problem(error)}"
            ) from error
        except Exception as error:  # SDK set-up and argument errors: a retry cannot help
            raise PermanentModelError(f"{type(error).__name__}: {error}") from error
        latency_ms = int((time.perf_counter() - started) * 1000)
        return _turn(reply, latency_ms=latency_ms)

    def _params(self, request: ModelRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "messages": request.messages,
            "timeout": self._timeout(request),
        }
        system = _system_blocks(request)
        if system:
            params["system"] = system
        if request.tools:  # the API refuses a tool_choice without tools
            params["tools"] = [_tool_param(tool) for tool in request.tools]
            params["tool_choice"] = {"type": "any"}
        return params

    def _timeout(self, request: ModelRequest) -> float:
        """The run's remaining time, but no more than the client's per-call timeout (the
        ``TRIAGE_MODEL_TIMEOUT_SECONDS`` setting): one hung call must leave time to retry."""
        per_call = self._client.timeout
        if isinstance(per_call, int | float):
            return min(request.timeout, float(per_call))
        return request.timeout


def anthropic_backend_from_settings() -> AnthropicBackend:
    """The Claude backend configured by the ``ANTHROPIC_*`` and ``TRIAGE_MODEL*`` settings."""
    client = anthropic.Anthropic(
        api_key=settings.ANTHROPIC_API_KEY,
        base_url=settings.ANTHROPIC_BASE_URL or None,
        max_retries=0,  # the engine loop retries itself, with traced backoff and jitter
        timeout=settings.TRIAGE_MODEL_TIMEOUT_SECONDS,
    )
    return AnthropicBackend(client=client, model=settings.TRIAGE_MODEL)


# --- the request -----------------------------------------------------------------------------


def _system_blocks(request: ModelRequest) -> list[dict[str, Any]]:
    """The system prompt and the static context, with the cache marker on the last block: the
    cached prefix is then tools + system prompt + static context (the API's order)."""
    texts = (request.system, request.static_context)
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text} for text in texts if text]
    if blocks:
        blocks[-1]["cache_control"] = {"type": "ephemeral"}
    return blocks


def _tool_param(tool: Tool) -> dict[str, Any]:
    try:
        schema = strict_input_schema(tool.input_schema())
    except (ValueError, TypeError, AssertionError) as error:  # the SDK asserts on unknown types
        raise PermanentModelError(f"tool {tool.name}: no strict input schema ({error})") from error
    return {
        "name": tool.name,
        "description": tool.description,
        "input_schema": schema,
        "strict": True,
    }


def strict_input_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A tool's input schema (pydantic's JSON schema) in the subset that strict tool use takes.

    The SDK's public ``anthropic.transform_schema`` translates: every object gets
    ``additionalProperties: false``; ``$defs``/``$ref`` stay; keywords the API cannot enforce
    (``minimum``, ``maxLength``, ``maxItems``, ``pattern``, ``default``, ...) move into the
    description, where the model still reads them and the policy's pydantic validation still
    enforces them. Optional fields stay optional (strict mode does not require every property).
    A free-form mapping (``dict[str, X]``) has no strict form, and the SDK would quietly make
    it an always-empty object, so it is refused. Raises ``ValueError`` when no strict form exists.
    """
    free_form = _free_form_objects(schema)
    if free_form:
        raise ValueError(f"free-form objects cannot be strict: {', '.join(free_form)}")
    return anthropic.transform_schema(schema)


def _free_form_objects(schema: Any, path: str = "#") -> list[str]:
    if not isinstance(schema, dict):
        return []
    found = [path] if schema.get("additionalProperties") not in (None, False) else []
    for key in ("properties", "$defs"):
        for name, sub in schema.get(key, {}).items():
            found += _free_form_objects(sub, f"{path}/{key}/{name}")
    for key in ("anyOf", "oneOf", "allOf"):
        for index, sub in enumerate(schema.get(key, [])):
            found += _free_form_objects(sub, f"{path}/{key}/{index}")
    return found + _free_form_objects(schema.get("items"), f"{path}/items")


# --- errors ----------------------------------------------------------------------------------


def _status_error(error: anthropic.APIStatusError) -> ModelError:
    status = error.status_code
    label = _STATUS_LABELS.get(status) or ("server error" if status >= 500 else "request refused")
    message = f"{label} (HTTP {status}, {type(error).__name__}): {error.api_message or '-'}"
    if status in TRANSIENT_STATUSES or status >= 500:
        return TransientModelError(message, retry_after=_retry_after(error.response.headers))
    return PermanentModelError(message)


def _connection_error(error: anthropic.APIConnectionError) -> TransientModelError:
    what = "timed out" if isinstance(error, anthropic.APITimeoutError) else "connection failed"
    cause = type(error.__cause__).__name__ if error.__cause__ else type(error).__name__
    return TransientModelError(f"request {what} ({cause})")


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """The wait the server asked for, in seconds: ``retry-after-ms``, else ``retry-after`` (in
    seconds or an HTTP date), capped at a minute. None when it asked for nothing usable."""
    seconds = _number(headers.get("retry-after-ms"), scale=1000.0)
    if seconds is None:
        seconds = _number(headers.get("retry-after"))
    if seconds is None:
        seconds = _seconds_until(headers.get("retry-after"))
    if seconds is None or seconds < 0:
        return None
    return min(seconds, MAX_RETRY_AFTER_SECONDS)


def _number(value: str | None, *, scale: float = 1.0) -> float | None:
    try:
        number = float(value) / scale if value is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def _seconds_until(value: str | None) -> float | None:
    try:
        moment = email.utils.parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None
    if moment is None or moment.tzinfo is None:
        return None
    return (moment - datetime.now(UTC)).total_seconds()


# --- the reply -------------------------------------------------------------------------------


class _Strict(BaseModel):
    """Read from the SDK's objects, which it builds without validation (it can hand back
    ``content=None``, an ``input`` string or a block without an id): nothing is coerced."""

    model_config = ConfigDict(strict=True, from_attributes=True)


class _TextBlock(_Strict):
    type: Literal["text"]
    text: str


class _ToolUseBlock(_Strict):
    type: Literal["tool_use"]
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    input: dict[str, Any]


class _Usage(_Strict):
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    cache_read_input_tokens: int | None = Field(default=None, ge=0)
    cache_creation_input_tokens: int | None = Field(default=None, ge=0)


class _Reply(_Strict):
    model: str
    stop_reason: str
    content: list[Annotated[_TextBlock | _ToolUseBlock, Field(discriminator="type")]]
    usage: _Usage


def _turn(reply: object, *, latency_ms: int) -> ModelTurn:
    """The reply as a turn, or ``MalformedReplyError``: all of it is read, or none of it."""
    if not isinstance(reply, anthropic.types.Message):
        raise MalformedReplyError(f"the reply is not a message (got {type(reply).__name__})")
    try:
        parsed = _Reply.model_validate(reply, from_attributes=True)
    except ValidationError as error:
        raise MalformedReplyError(
            f"the reply is not a well-formed message: {_problem(error)}"
        ) from error
    usage = parsed.usage
    return ModelTurn(
        content=[block.model_dump() for block in parsed.content],
        stop_reason=parsed.stop_reason,
        usage=Usage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_input_tokens or 0,
            cache_write_tokens=usage.cache_creation_input_tokens or 0,
        ),
        model=parsed.model,
        latency_ms=latency_ms,
    )


def _problem(error: ValidationError) -> str:
    """The first problem, without the offending values (model output is untrusted)."""
    first = error.errors(include_input=False, include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "reply"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"
