"""The state of one run that tools and the policy see."""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from agent.engine.workflow import WorkflowDefinition

ToolFault = Literal["error", "timeout"]
ModelFault = Literal["malformed_json", "invalid_tool_input", "missing_fields"]


@dataclass(frozen=True)
class FaultPlan:
    """Faults to inject, for evaluations and tests: named tools fail, or the model's first
    ``model_fault_turns`` replies are corrupted. Empty in production."""

    tool_faults: dict[str, ToolFault] = field(default_factory=dict)
    model_fault: ModelFault | None = None
    model_fault_turns: int = 1


@dataclass
class RunContext:
    """One run's context. ``subject`` is what the workflow works on (a ticket view); it is
    loaded by the workflow, from the database in production or from a snapshot in evaluations."""

    workflow: "WorkflowDefinition"
    subject_id: int
    subject: Any
    faults: FaultPlan = field(default_factory=FaultPlan)
    flags: set[str] = field(default_factory=set)
    state: dict[str, Any] = field(default_factory=dict)
    # Why the run worked on less context than it should have (``degraded_context``): each
    # failed tool or source left out, in words, so that a reviewer sees what was missing.
    degraded: list[str] = field(default_factory=list)
    # Calls the policy refused as unsafe (not mere invalid arguments): evaluations fail on any.
    policy_violations: int = 0

    def degrade(self, why: str) -> None:
        """Records that the run goes on with less context than it should have, and why: the
        proposal is flagged ``degraded_context`` and shows the reason."""
        self.flags.add("degraded_context")
        if why not in self.degraded:
            self.degraded.append(why)
