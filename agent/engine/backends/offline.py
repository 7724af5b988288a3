"""The offline backend: a local "model" that speaks the same tool protocol.

It wraps a workflow's offline model, which reads the conversation (tool results included) and
answers with the next turn, exactly as a remote model would. The model's name says which
version decided (for a trained model: its code and its training data).
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from agent.engine.backends.base import ModelRequest, ModelTurn


class OfflineModel(Protocol):
    name: str

    def __call__(self, request: ModelRequest) -> ModelTurn: ...


@dataclass(frozen=True)
class FunctionModel:
    """An offline model that is a plain function of the request, named by its version."""

    name: str
    decide: Callable[[ModelRequest], ModelTurn]

    def __call__(self, request: ModelRequest) -> ModelTurn:
        return self.decide(request)


class OfflineBackend:
    name = "offline"

    def __init__(self, model: OfflineModel) -> None:
        self._model = model
        self.model = model.name

    def complete(self, request: ModelRequest) -> ModelTurn:
        started = time.perf_counter()
        turn = self._model(request)
        latency_ms = int((time.perf_counter() - started) * 1000)
        return ModelTurn(
            content=turn.content,
            stop_reason=turn.stop_reason,
            usage=turn.usage,
            model=self.model,
            latency_ms=latency_ms,
        )
