"""Writes a run's trace: ordered, masked steps a reviewer can read."""

import logging
from typing import Any

from agent.models import AgentRun, TraceStep
from agent.redaction import redact, redact_data

logger = logging.getLogger("agent.trace")

SUMMARY_LIMIT = 500


class Tracer:
    """Appends steps to one run. Everything is redacted before it is stored or logged."""

    def __init__(self, run: AgentRun) -> None:
        self.run = run
        last = run.steps.order_by("-position").values_list("position", flat=True).first()
        self._position = last or 0

    def record(
        self,
        kind: str,
        summary: str,
        *,
        name: str = "",
        payload: Any = None,
        duration_ms: int | None = None,
        actor: Any = None,
    ) -> TraceStep:
        self._position += 1
        summary = redact(summary)
        if len(summary) > SUMMARY_LIMIT:
            summary = summary[: SUMMARY_LIMIT - 1] + "…"
        step = TraceStep.objects.create(
            run=self.run,
            position=self._position,
            kind=kind,
            name=name,
            summary=summary,
            payload=redact_data(payload) if payload is not None else {},
            duration_ms=duration_ms,
            actor=actor,
        )
        # Steps at DEBUG (the trace holds them); each run's outcome is logged at INFO.
        logger.debug("run %s step %s %s: %s", self.run.pk, step.position, kind, summary)
        return step
