"""A scripted model backend for tests: answers with the given turns in order."""

from collections.abc import Callable
from typing import Any

from agent.engine.backends.base import ModelError, ModelRequest, ModelTurn, Usage

Step = ModelTurn | ModelError | Callable[[ModelRequest], ModelTurn]


def tool_use(name: str, arguments: Any, *, id: str | None = None) -> dict[str, Any]:
    return {"type": "tool_use", "id": id or f"toolu_{name}", "name": name, "input": arguments}


def turn(*blocks: dict[str, Any], stop_reason: str = "tool_use", tokens: int = 10) -> ModelTurn:
    return ModelTurn(
        content=list(blocks),
        stop_reason=stop_reason,
        usage=Usage(input_tokens=tokens, output_tokens=tokens),
        model="scripted",
    )


def submit(ticket_id: int, category: str = "billing", **overrides: Any) -> ModelTurn:
    arguments = {
        "ticket_id": ticket_id,
        "category": category,
        "urgency": "normal",
        "confidence": "high",
        "reason": "Scripted.",
        "draft_note": "Check the payment log.",
        **overrides,
    }
    return turn(tool_use("submit_triage", arguments, id="toolu_submit"))


class ScriptedBackend:
    name = "scripted"
    model = "scripted-model"

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.requests: list[ModelRequest] = []

    def complete(self, request: ModelRequest) -> ModelTurn:
        # Keep a copy: the loop appends to the same message list afterwards.
        self.requests.append(
            ModelRequest(**{**request.__dict__, "messages": list(request.messages)})
        )
        if not self.steps:
            raise AssertionError("the scripted backend ran out of turns")
        step = self.steps.pop(0)
        if isinstance(step, ModelError):
            raise step
        if callable(step):
            return step(request)
        return step
