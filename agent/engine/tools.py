"""Typed tools: a pydantic input model, an output model, a risk level, and a handler.

A handler receives the run context and validated input and returns its output model. An expected
failure is a ``ToolError``: the loop returns it to the model as an error result. Handlers never
need to catch anything else either; the loop turns any exception into an error result.
"""

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from agent.engine.context import RunContext


class Risk(StrEnum):
    """What a tool may do, from harmless to irreversible. Order matters: the policy compares."""

    READ = "read"
    PROPOSE = "propose"
    INTERNAL_WRITE = "internal_write"
    EXTERNAL = "external"
    DESTRUCTIVE = "destructive"

    @property
    def level(self) -> int:
        return list(Risk).index(self)


class ToolInput(BaseModel):
    """Base for tool inputs: unknown fields are errors, so the model cannot smuggle arguments."""

    model_config = ConfigDict(extra="forbid")


class ToolOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ToolError(Exception):
    """An expected tool failure. Its message is shown to the model, so it must be safe to show."""


Handler = Callable[["RunContext", Any], BaseModel]


@dataclass(frozen=True)
class Scope:
    """What a tool may touch, declared by the tool and checked by the policy: the run's subject
    (its input names the subject, and the policy refuses any other), or no subject's data at all,
    with the reason why that is safe (shared, curated data such as reply templates)."""

    subject: bool
    reason: str = ""

    def __str__(self) -> str:
        return "the run's subject" if self.subject else f"no subject: {self.reason}"


SUBJECT = Scope(subject=True)


def unscoped(reason: str) -> Scope:
    """A tool that reads or writes no subject's data; ``reason`` says why that is safe."""
    if not reason.strip():
        raise ValueError("a tool without a subject must say why")
    return Scope(subject=False, reason=reason)


@dataclass(frozen=True)
class Tool:
    """A tool the model may call. ``outcome`` is set on terminal tools: calling one successfully
    ends the run with that outcome and the tool's output as the result. ``scope`` is required
    (``workflow_register`` refuses a tool without one)."""

    name: str
    description: str
    input_model: type[ToolInput]
    output_model: type[BaseModel]
    risk: Risk
    handler: Handler
    outcome: str | None = None
    scope: Scope | None = None

    @property
    def terminal(self) -> bool:
        return self.outcome is not None

    def input_schema(self) -> dict[str, Any]:
        """The JSON schema the model sees for this tool's input."""
        schema = self.input_model.model_json_schema()
        schema.pop("title", None)
        return schema

    def output_schema(self) -> dict[str, Any]:
        """The JSON schema of what the tool returns (its result, as the model reads it)."""
        return self.output_model.model_json_schema()


def tool(
    *,
    name: str,
    risk: Risk,
    input_model: type[ToolInput],
    output_model: type[BaseModel],
    outcome: str | None = None,
    scope: Scope | None = None,
) -> Callable[[Handler], Tool]:
    """Turns a handler into a ``Tool``; the handler's docstring becomes the description."""

    def wrap(handler: Handler) -> Tool:
        description = " ".join((handler.__doc__ or "").split())
        if not description:
            raise ValueError(f"tool {name} needs a docstring: it is the model's description")
        return Tool(
            name=name,
            description=description,
            input_model=input_model,
            output_model=output_model,
            risk=risk,
            handler=handler,
            outcome=outcome,
            scope=scope,
        )

    return wrap
