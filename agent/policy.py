"""The policy: the one place that decides, in code, whether a tool call may run.

The model proposes calls; it never decides what is allowed. Every decision is traced by the
loop, and a refusal goes back to the model as an error result. One condition per check so that
coverage shows every branch.
"""

from dataclasses import dataclass

from pydantic import ValidationError

from agent.engine.backends.base import ToolCall
from agent.engine.context import RunContext
from agent.engine.tools import Tool, ToolInput
from agent.engine.workflow import tool_known_anywhere


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    tool: Tool | None = None
    arguments: ToolInput | None = None
    # A refusal of something the agent must never do (as opposed to a malformed call).
    violation: bool = False


def policy_decide(*, call: ToolCall, ctx: RunContext) -> Decision:
    """Allows ``call`` only if its tool belongs to the run's workflow, its risk is within the
    workflow's maximum side effect, its arguments validate, and it targets the run's subject."""
    workflow = ctx.workflow
    tool = workflow.tool(call.name)
    if tool is None and tool_known_anywhere(call.name):
        reason = f"tool {call.name!r} is not available in workflow {workflow.name}"
        return Decision(False, reason, violation=True)
    if tool is None:
        return Decision(False, f"unknown tool {call.name!r}", violation=True)
    if tool.risk.level > workflow.max_side_effect.level:
        return Decision(
            False,
            f"tool {tool.name!r} has risk {tool.risk}, above this workflow's maximum side effect "
            f"({workflow.max_side_effect}); it needs a human",
            tool=tool,
            violation=True,
        )
    try:
        arguments = tool.input_model.model_validate(call.input)
    except ValidationError as error:
        return Decision(False, f"invalid arguments: {_describe(error)}", tool=tool)
    # The scope is declared by every tool and checked at registration (``workflow_register``):
    # a subject-scoped tool names its target, which must be the run's subject.
    scoped = tool.scope is None or tool.scope.subject  # an unregistered tool: the strict reading
    target = getattr(arguments, workflow.subject_field, None) if scoped else ctx.subject_id
    if target != ctx.subject_id:
        return Decision(
            False,
            f"{workflow.subject_field} {target} is not the one under work ({ctx.subject_id})",
            tool=tool,
            violation=True,
        )
    return Decision(True, "allowed", tool=tool, arguments=arguments)


def _describe(error: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(part) for part in item['loc']) or 'input'}: {item['msg']}"
        for item in error.errors(include_url=False)
    ]
    return "; ".join(problems[:5])
