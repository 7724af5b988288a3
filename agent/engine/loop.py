"""The agent loop: ask the model, check every tool call with the policy, run it, feed the result
back, and stop on a terminal tool or a guard. Every step is traced.

The loop never raises for anything the model or a tool does: each failure ends in a traced
outcome (a ``safe_stop`` when nothing better is possible).
"""

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.engine.backends.base import (
    MalformedReplyError,
    ModelBackend,
    ModelRequest,
    ModelTurn,
    PermanentModelError,
    ToolCall,
    TransientModelError,
    Usage,
)
from agent.engine.context import RunContext
from agent.engine.tools import Risk, Tool, ToolError, ToolInput
from agent.engine.tracing import Tracer
from agent.engine.workflow import SAFE_STOP, WorkflowDefinition
from agent.policy import policy_decide
from agent.redaction import redact, redact_data

Kind = str  # TraceStep.Kind values; the engine writes them as plain strings


@dataclass(frozen=True)
class Limits:
    max_steps: int = 8
    token_budget: int = 60_000
    timeout_seconds: float = 120.0
    max_transient_retries: int = 3
    max_malformed_replies: int = 2
    retry_base_delay: float = 0.5
    retry_max_delay: float = 8.0
    max_tokens_per_turn: int = 1024


@dataclass
class LoopResult:
    outcome: str
    output: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    usage: Usage = field(default_factory=Usage)
    model_calls: int = 0
    latency_ms: int = 0
    max_risk: Risk = Risk.READ
    prompt_version: str = ""
    context_chars: int = 0  # characters of context results sent to the model
    context_left_out: list[str] = field(default_factory=list)  # sources over the budget


class StopRun(Exception):
    """Ends the run as a safe stop with this reason."""


@dataclass(frozen=True)
class _Executed:
    block: dict[str, Any]  # the tool_result block for the model
    ok: bool
    tool: Tool | None = None
    output: dict[str, Any] | None = None


class AgentLoop:
    def __init__(
        self,
        *,
        ctx: RunContext,
        backend: ModelBackend,
        tracer: Tracer,
        limits: Limits,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.ctx, self.backend, self.tracer, self.limits = ctx, backend, tracer, limits
        self.clock, self.sleep = clock, sleep
        self.result = LoopResult(outcome=SAFE_STOP)
        self.deadline = clock() + limits.timeout_seconds
        self.malformed_replies = 0

    def run(self) -> LoopResult:
        """Runs the workflow to an outcome. Never raises for model or tool behaviour."""
        workflow = self.ctx.workflow
        try:
            static_context = workflow.static_context()
            self.result.prompt_version = workflow.prompt_version(static_context)
            trace_intent(
                self.tracer,
                workflow=workflow,
                subject_id=self.ctx.subject_id,
                prompt_version=self.result.prompt_version,
                backend=f"{self.backend.name}:{self.backend.model}",
                limits=self.limits,
            )
            self.ctx.flags |= workflow.inspect(self.ctx)
            messages = self._gather_context()
            request = ModelRequest(
                system=workflow.system_prompt,
                static_context=static_context,
                tools=workflow.tools,
                messages=messages,
                max_tokens=self.limits.max_tokens_per_turn,
            )
            for _ in range(self.limits.max_steps):
                turn = self._ask(request)
                messages.append({"role": "assistant", "content": _masked(turn.content)})
                if turn.stop_reason == "refusal":
                    return self._finish("refusal", {"reason": "the model refused", "kind": "model"})
                calls = turn.tool_calls
                if not calls:
                    self._note_malformed("the reply called no tool")
                    messages.append(_nudge(workflow.terminal_tools))
                    continue
                executed = [self._execute(call) for call in calls]
                final = next((e for e in executed if e.ok and e.tool and e.tool.terminal), None)
                if final is not None and final.tool is not None and final.tool.outcome:
                    return self._finish(final.tool.outcome, final.output or {})
                messages.append({"role": "user", "content": [e.block for e in executed]})
            raise StopRun(f"step limit reached ({self.limits.max_steps} model turns)")
        except StopRun as stop:
            self.tracer.record("error", f"Safe stop: {stop}", payload={"reason": str(stop)})
            self.result.outcome, self.result.error = SAFE_STOP, str(stop)
            trace_safe_stop(self.tracer, str(stop))
            return self.result

    # --- context ---------------------------------------------------------------------------

    def _gather_context(self) -> list[dict[str, Any]]:
        """Runs the workflow's context calls through the policy, as if the model had made them,
        so that the context reaches the model only as tool results, and every source is traced.
        A required source that fails stops the run: the agent must not invent it."""
        workflow = self.ctx.workflow
        calls = workflow.context_calls(self.ctx)
        executed = [self._execute(call, kind="context_source") for call in calls]
        for call, result in zip(calls, executed, strict=True):
            if not result.ok and call.name in workflow.required_context:
                raise StopRun(f"required context unavailable: {call.name} failed")
            if not result.ok and result.tool is None:  # a tool that ran and failed said why
                self.ctx.degrade(f"{call.name} was refused by the policy")
        executed = self._within_budget(calls, executed, workflow.context_budget_chars)
        opening = {
            "role": "user",
            "content": [{"type": "text", "text": workflow.instructions(self.ctx)}],
        }
        if not calls:
            return [opening]
        tool_uses = [
            {"type": "tool_use", "id": call.id, "name": call.name, "input": call.input}
            for call in calls
        ]
        return [
            opening,
            {"role": "assistant", "content": tool_uses},
            {"role": "user", "content": [result.block for result in executed]},
        ]

    def _within_budget(
        self, calls: list[ToolCall], executed: list["_Executed"], budget: int
    ) -> list["_Executed"]:
        """Keeps the context within the workflow's size budget: sources are kept in the order
        the workflow lists them (most important first); one that does not fit is replaced by a
        note saying so, traced, and the run is flagged ``degraded_context``."""
        kept, used = [], 0
        for call, result in zip(calls, executed, strict=True):
            size = len(str(result.block["content"]))
            if used + size <= budget or call.name in self.ctx.workflow.required_context:
                kept.append(result)
                used += size
                continue
            self.ctx.degrade(
                f"{call.name} left out: {size:,} characters would exceed the context budget "
                f"({used:,} of {budget:,} used)"
            )
            self.result.context_left_out.append(call.name)
            self.tracer.record(
                "error",
                f"{call.name} left out: {size} characters would exceed the context budget "
                f"({used} of {budget} used)",
                name=call.name,
            )
            kept.append(
                _Executed(_error_block(call, "Left out: over the context budget."), ok=False)
            )
        self.result.context_chars = used
        return kept

    # --- the model -------------------------------------------------------------------------

    def _ask(self, request: ModelRequest) -> ModelTurn:
        """One model turn, with bounded retries for transient errors and malformed replies."""
        transient_failures = 0
        while True:
            self._check_guards()
            self.result.model_calls += 1
            self.tracer.record(
                "model_request",
                f"Ask {self.backend.name}:{self.backend.model} (turn {self.result.model_calls})",
                payload={"messages": len(request.messages), "last": request.messages[-1]},
            )
            timed = ModelRequest(**{**request.__dict__, "timeout": self._remaining()})
            try:
                turn = self.backend.complete(timed)
                _check_turn(turn)
            except TransientModelError as error:
                transient_failures += 1
                if transient_failures > self.limits.max_transient_retries:
                    raise StopRun(
                        f"model unavailable after {transient_failures} attempts: {error}"
                    ) from error
                self._back_off(transient_failures, error)
                continue
            except MalformedReplyError as error:
                self._note_malformed(str(error))
                continue
            except PermanentModelError as error:
                raise StopRun(f"model error: {error}") from error
            self._account(turn)
            return turn

    def _account(self, turn: ModelTurn) -> None:
        self.result.usage += turn.usage
        self.result.latency_ms += turn.latency_ms
        self.tracer.record(
            "model_response",
            _describe_turn(turn),
            payload={
                "content": turn.content,
                "stop_reason": turn.stop_reason,
                "usage": turn.usage.__dict__,
                "model": turn.model,
            },
            duration_ms=turn.latency_ms,
        )
        if self.result.usage.total > self.limits.token_budget:
            raise StopRun(
                f"token budget exceeded ({self.result.usage.total} > {self.limits.token_budget})"
            )

    def _back_off(self, failures: int, error: TransientModelError) -> None:
        """Waits before a retry: as long as the server asked (``retry-after``), up to the run's
        deadline (a wait beyond it ends the run now instead of sleeping into the timeout);
        without an ask, exponential backoff with jitter, at most ``retry_max_delay``."""
        remaining = max(self._remaining(), 0.0)
        if error.retry_after is not None and error.retry_after > remaining:
            raise StopRun(
                f"the model API asked to wait {error.retry_after:.0f}s, beyond the run's "
                f"deadline ({remaining:.0f}s left)"
            )
        ceiling = min(self.limits.retry_max_delay, self.limits.retry_base_delay * 2**failures)
        jitter = random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret
        delay = min(error.retry_after if error.retry_after is not None else jitter, remaining)
        self.tracer.record(
            "retry",
            f"Transient model error, retry {failures} in {delay:.2f}s: {error}",
            payload={"error": str(error), "delay_seconds": round(delay, 3)},
        )
        self.sleep(delay)

    def _note_malformed(self, problem: str) -> None:
        self.malformed_replies += 1
        self.tracer.record(
            "retry", f"Malformed reply ({problem}), attempt {self.malformed_replies}"
        )
        if self.malformed_replies > self.limits.max_malformed_replies:
            raise StopRun(f"malformed model output {self.malformed_replies} times: {problem}")

    # --- tools -----------------------------------------------------------------------------

    def _execute(self, call: ToolCall, kind: Kind = "tool_call") -> _Executed:
        """Checks one call with the policy, runs it if allowed, and traces both."""
        decision = policy_decide(call=call, ctx=self.ctx)
        verdict = "allowed" if decision.allowed else f"refused: {decision.reason}"
        self.tracer.record(
            "policy_decision",
            f"Policy {verdict} ({call.name} {_brief(call.input)})",
            name=call.name,
            payload={
                "allowed": decision.allowed,
                "reason": decision.reason,
                "violation": decision.violation,
                "input": call.input,
            },
        )
        if not decision.allowed or decision.tool is None or decision.arguments is None:
            self.ctx.policy_violations += decision.violation
            return _Executed(_error_block(call, f"Refused by policy: {decision.reason}"), ok=False)
        tool, arguments = decision.tool, decision.arguments
        self.tracer.record(
            kind,
            f"Call {tool.name} ({tool.risk})",
            name=tool.name,
            payload={"input": arguments.model_dump(mode="json")},
        )
        started = time.perf_counter()
        try:
            self._check_guards()
            output = self._run_tool(tool, arguments)
        except StopRun:
            raise
        except ToolError as error:
            return self._tool_failed(call, tool, str(error), started)
        except Exception as error:  # a bug in a tool must not crash the run
            return self._tool_failed(
                call, tool, f"internal error ({type(error).__name__})", started
            )
        duration = int((time.perf_counter() - started) * 1000)
        if tool.risk.level > self.result.max_risk.level:
            self.result.max_risk = tool.risk
        # The one place a tool's result enters the conversation (and so the trace, the
        # run's output and the proposal made from it): masked here, whatever the tool did.
        data = redact_data(output.model_dump(mode="json"))
        self.tracer.record(
            "tool_result",
            f"{tool.name} returned {_brief(data)}",
            name=tool.name,
            payload=data,
            duration_ms=duration,
        )
        block = {
            "type": "tool_result",
            "tool_use_id": call.id,
            "content": json.dumps(data, ensure_ascii=False),
            "is_error": False,
        }
        return _Executed(block, ok=True, tool=tool, output=data)

    def _run_tool(self, tool: Tool, arguments: ToolInput) -> Any:
        fault = self.ctx.faults.tool_faults.get(tool.name)
        if fault == "timeout":
            raise ToolError(f"{tool.name} timed out")
        if fault == "error":
            raise ToolError(f"{tool.name} is unavailable (upstream error)")
        return tool.handler(self.ctx, arguments)

    def _tool_failed(self, call: ToolCall, tool: Tool, message: str, started: float) -> _Executed:
        duration = int((time.perf_counter() - started) * 1000)
        if not tool.terminal:
            # The agent works on with less than it asked for (a source, a draft); a terminal
            # tool's error is about the model's answer, which the model corrects.
            self.ctx.degrade(f"{tool.name} failed: {message}")
        self.tracer.record(
            "error",
            f"{tool.name} failed: {message}",
            name=tool.name,
            payload={"error": message},
            duration_ms=duration,
        )
        return _Executed(_error_block(call, message), ok=False, tool=tool)

    # --- guards and the end ----------------------------------------------------------------

    def _remaining(self) -> float:
        return self.deadline - self.clock()

    def _check_guards(self) -> None:
        if self._remaining() <= 0:
            raise StopRun(f"timed out after {self.limits.timeout_seconds:.0f}s")

    def _finish(self, outcome: str, output: dict[str, Any]) -> LoopResult:
        self.result.outcome, self.result.output = outcome, output
        self.tracer.record("output", f"Outcome: {outcome}", payload=output)
        return self.result


def trace_intent(
    tracer: Tracer,
    *,
    workflow: WorkflowDefinition,
    subject_id: int,
    prompt_version: str,
    backend: str,
    limits: Limits,
) -> None:
    """The first step of every run: what it was asked to do, and within which bounds."""
    tracer.record(
        "intent",
        f"{workflow.description} Subject: {workflow.subject_field} {subject_id}; at most "
        f"{workflow.max_side_effect_description}.",
        name=workflow.name,
        payload={
            "workflow": workflow.name,
            "subject": {workflow.subject_field: subject_id},
            "max_side_effect": str(workflow.max_side_effect),
            "outcomes": list(workflow.outcomes),
            "tools": [tool.name for tool in workflow.tools],
            "prompt_version": prompt_version,
            "backend": backend,
            "limits": {
                "max_steps": limits.max_steps,
                "token_budget": limits.token_budget,
                "timeout_seconds": limits.timeout_seconds,
                "context_budget_chars": workflow.context_budget_chars,
            },
        },
    )


def trace_safe_stop(tracer: Tracer, reason: str) -> None:
    """The last step of a run that ended in a safe stop (every run ends in an output step)."""
    tracer.record(
        "output", f"Outcome: {SAFE_STOP}", payload={"outcome": SAFE_STOP, "error": reason}
    )


def run_loop(
    *, ctx: RunContext, backend: ModelBackend, tracer: Tracer, limits: Limits, **kwargs: Any
) -> LoopResult:
    """Runs one workflow for one subject; see ``AgentLoop``."""
    return AgentLoop(ctx=ctx, backend=backend, tracer=tracer, limits=limits, **kwargs).run()


def _check_turn(turn: Any) -> None:
    """Backends return parsed turns, but a turn is still checked: a reply that does not have
    the shape of a turn is malformed, never half-used."""
    if not isinstance(turn, ModelTurn) or not isinstance(turn.content, list):
        raise MalformedReplyError("the reply has no content list")
    for block in turn.content:
        if not isinstance(block, dict) or "type" not in block:
            raise MalformedReplyError("a content block has no type")
        if block["type"] == "tool_use" and not {"id", "name"} <= block.keys():
            raise MalformedReplyError("a tool_use block lacks its id or name")


def _masked(content: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The model's turn as it re-enters the conversation, and so every later request: its text
    and tool inputs masked like a tool result, since a model that writes a secret (echoed from
    the ticket, or invented) must not be sent it again. The calls themselves run as the model
    made them; other blocks (a thinking block's signature must return unchanged) stay as is."""
    return [_masked_block(block) for block in content]


def _masked_block(block: dict[str, Any]) -> dict[str, Any]:
    if block.get("type") == "text" and isinstance(block.get("text"), str):
        return {**block, "text": redact(block["text"])}
    if block.get("type") == "tool_use" and "input" in block:
        return {**block, "input": redact_data(block["input"])}
    return block


def _error_block(call: ToolCall, message: str) -> dict[str, Any]:
    content = redact(message)
    return {"type": "tool_result", "tool_use_id": call.id, "content": content, "is_error": True}


def _nudge(terminal_tools: list[str]) -> dict[str, Any]:
    text = f"Finish by calling exactly one of these tools: {', '.join(terminal_tools)}."
    return {"role": "user", "content": [{"type": "text", "text": text}]}


def _brief(value: Any, limit: int = 120) -> str:
    """A one-line gist of a tool input or output for trace summaries (payloads hold it all)."""
    if isinstance(value, dict):
        parts = [
            f"{key}: {len(item)} items" if isinstance(item, list) else f"{key}={item!r}"
            for key, item in value.items()
        ]
        text = "{" + ", ".join(parts) + "}"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe_turn(turn: ModelTurn) -> str:
    calls = ", ".join(call.name for call in turn.tool_calls) or "no tool"
    return f"Model answered ({turn.stop_reason}): {calls}; {turn.usage.total} tokens"
