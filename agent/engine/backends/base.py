"""The one protocol every model backend speaks, and the values that cross it.

Messages use the content-block shape of the Messages API (``{"role": ..., "content": [...]}``
with ``text``, ``tool_use`` and ``tool_result`` blocks): it is the lingua franca of tool use,
and the offline backend reads and writes the same shape.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.engine.tools import Tool


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
        )

    @property
    def total(self) -> int:
        """Tokens counted against a run's budget (cached tokens included: they are processed)."""
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
        )


@dataclass(frozen=True)
class ToolCall:
    """A tool call as the model made it: the input is untrusted and not yet validated."""

    id: str
    name: str
    input: Any


@dataclass(frozen=True)
class ModelRequest:
    system: str
    static_context: str  # part of the cacheable prefix (e.g. category rules)
    tools: Sequence[Tool]
    messages: list[dict[str, Any]]
    max_tokens: int = 1024
    timeout: float = 60.0


@dataclass(frozen=True)
class ModelTurn:
    content: list[dict[str, Any]]
    stop_reason: str
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    latency_ms: int = 0

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [
            ToolCall(id=block["id"], name=block["name"], input=block.get("input"))
            for block in self.content
            if block.get("type") == "tool_use"
        ]

    @property
    def text(self) -> str:
        return "\n".join(b.get("text", "") for b in self.content if b.get("type") == "text")


class ModelBackend(Protocol):
    """A model that takes a request and answers with one turn."""

    name: str
    model: str

    def complete(self, request: ModelRequest) -> ModelTurn: ...


class ModelError(Exception):
    """Base of the errors a backend raises; the loop decides what each means."""


class TransientModelError(ModelError):
    """Worth retrying (rate limit, overload, 5xx, timeout, connection)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class MalformedReplyError(ModelError):
    """The reply could not be read (not JSON, missing fields, wrong types)."""


class PermanentModelError(ModelError):
    """Retrying will not help (bad request, authentication, permission)."""
