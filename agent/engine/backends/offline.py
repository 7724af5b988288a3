"""The offline backend: a deterministic, local "model" that speaks the same tool protocol.

It wraps a workflow's offline decision function, which reads the conversation (tool results
included) and answers with the next turn, exactly as a remote model would.
"""

import time
from collections.abc import Callable

from agent.engine.backends.base import ModelRequest, ModelTurn

OfflineModel = Callable[[ModelRequest], ModelTurn]


class OfflineBackend:
    name = "offline"

    def __init__(self, decide: OfflineModel, *, model: str) -> None:
        self._decide = decide
        self.model = model

    def complete(self, request: ModelRequest) -> ModelTurn:
        started = time.perf_counter()
        turn = self._decide(request)
        latency_ms = int((time.perf_counter() - started) * 1000)
        return ModelTurn(
            content=turn.content,
            stop_reason=turn.stop_reason,
            usage=turn.usage,
            model=self.model,
            latency_ms=latency_ms,
        )
