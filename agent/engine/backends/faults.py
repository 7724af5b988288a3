"""Model fault injection for evaluations and tests: corrupts a backend's first replies.

It wraps any backend, so the same injected fault exercises the offline and the Claude backends
through the same loop.
"""

from dataclasses import replace

from agent.engine.backends.base import MalformedReplyError, ModelBackend, ModelRequest, ModelTurn
from agent.engine.context import ModelFault


class FaultInjectingBackend:
    def __init__(self, inner: ModelBackend, *, fault: ModelFault, turns: int = 1) -> None:
        self.inner = inner
        self.fault = fault
        self.remaining = turns
        self.name = inner.name
        self.model = inner.model

    def complete(self, request: ModelRequest) -> ModelTurn:
        turn = self.inner.complete(request)
        if self.remaining <= 0:
            return turn
        self.remaining -= 1
        if self.fault == "malformed_json":
            raise MalformedReplyError("the reply body is not valid JSON (injected fault)")
        if self.fault == "missing_fields":
            return replace(turn, content=None)  # type: ignore[arg-type]  # the fault is the point
        corrupted = [
            {**block, "input": {"unexpected_field": True}}
            if block.get("type") == "tool_use"
            else block
            for block in turn.content
        ]
        return replace(turn, content=corrupted)
