"""A workflow is a registered definition: what it is for, how far it may go, its tools, its
outcomes, its prompt and its context. The loop, the policy and the backends read it; adding a
workflow never means changing them."""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.engine.backends.base import ToolCall
from agent.engine.backends.offline import OfflineModel
from agent.engine.context import RunContext
from agent.engine.tools import Risk, Tool

SAFE_STOP = "safe_stop"


def _as_masked(output: dict[str, Any], subject: Any) -> dict[str, Any]:
    """By default staff see the output as the model wrote it, masked."""
    return output


@dataclass(frozen=True)
class WorkflowDefinition:
    name: str
    description: str
    max_side_effect: Risk
    max_side_effect_description: str
    tools: tuple[Tool, ...]
    outcomes: tuple[str, ...]
    system_prompt: str
    # The subject field every tool call must match (the policy pins it to the run's subject).
    subject_field: str
    # Loads the subject for a run from the database (production).
    load_subject: Callable[[int], Any]
    # Static, cacheable context (e.g. category rules), rebuilt per run from the database.
    static_context: Callable[[], str]
    # The opening instruction, then the context calls made through the policy before the model
    # is first asked; their results are the model's context.
    instructions: Callable[[RunContext], str]
    context_calls: Callable[[RunContext], list[ToolCall]]
    required_context: frozenset[str]
    # Deterministic checks on the subject that raise flags whatever the model says.
    inspect: Callable[[RunContext], set[str]]
    # Loads the offline model a run uses (named by its version; see ``backends.offline``).
    offline_model: Callable[[], OfflineModel]
    # Characters of context results (ticket, similar tickets, templates) sent to the model.
    context_budget_chars: int = 24_000
    # The run's (masked) output as the people who review it may see it: what the model saw
    # masked but staff may read (the customer's own address, say) filled in from the subject.
    # The model, the trace and the run keep the masked output.
    output_for_staff: Callable[[dict[str, Any], Any], dict[str, Any]] = _as_masked

    def tool(self, name: str) -> Tool | None:
        return next((tool for tool in self.tools if tool.name == name), None)

    @property
    def terminal_tools(self) -> list[str]:
        return [tool.name for tool in self.tools if tool.terminal]

    def prompt_version(self, static_context: str | None = None) -> str:
        """The version of everything the model is told: the system prompt, every tool's name,
        description and schemas, and the static context (e.g. category rules, read live unless
        given). Derived from the content, so no change can ship under an old version."""
        if static_context is None:
            static_context = self.static_context()
        tools = [
            {
                "name": tool.name,
                "description": tool.description,
                "input": tool.input_schema(),
                "output": tool.output_schema(),
            }
            for tool in self.tools
        ]
        return f"{self.name}@" + content_digest(
            self.system_prompt, json.dumps(tools, sort_keys=True), static_context
        )


def content_digest(*parts: str) -> str:
    """A short, stable digest of some texts (the first 12 hex digits of their SHA-256)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")  # so that ("ab", "c") and ("a", "bc") differ
    return digest.hexdigest()[:12]


_REGISTRY: dict[str, WorkflowDefinition] = {}


def workflow_register(definition: WorkflowDefinition) -> WorkflowDefinition:
    """Adds a workflow to the registry; registering the same name twice is an error."""
    if definition.name in _REGISTRY and _REGISTRY[definition.name] is not definition:
        raise ValueError(f"workflow {definition.name!r} is already registered")
    unknown = {tool.outcome for tool in definition.tools if tool.terminal} - set(
        definition.outcomes
    )
    if unknown:
        raise ValueError(
            f"terminal tools of {definition.name} end in undeclared outcomes {unknown}"
        )
    for tool in definition.tools:
        _check_scope(definition, tool)
    _REGISTRY[definition.name] = definition
    return definition


def _check_scope(definition: WorkflowDefinition, tool: Tool) -> None:
    """A tool declares its scope, and its input agrees: a subject-scoped tool names the
    subject (a required field), a tool without a subject has no such field to misuse."""
    field = definition.subject_field
    declared = tool.input_model.model_fields.get(field)
    if tool.scope is None:
        raise ValueError(
            f"tool {tool.name} of {definition.name} declares no scope: pass scope=SUBJECT, or "
            "scope=unscoped(reason) for a tool that touches no subject's data"
        )
    if tool.scope.subject and (declared is None or not declared.is_required()):
        raise ValueError(f"tool {tool.name} is scoped to the subject but has no required {field}")
    if not tool.scope.subject and declared is not None:
        raise ValueError(f"tool {tool.name} declares no subject but takes a {field}")


def workflow_get(name: str) -> WorkflowDefinition:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise LookupError(f"no workflow named {name!r}; known: {sorted(_REGISTRY)}") from None


def workflow_all() -> list[WorkflowDefinition]:
    return list(_REGISTRY.values())


def tool_known_anywhere(name: str) -> bool:
    """True if some registered workflow has a tool of this name."""
    return any(definition.tool(name) for definition in _REGISTRY.values())
