"""A second workflow plugs into the same engine without touching the loop, policy or backends."""

import json

import pytest
from pydantic import Field

from agent.engine.backends.base import ModelRequest, ModelTurn, ToolCall
from agent.engine.backends.offline import FunctionModel, OfflineBackend
from agent.engine.context import RunContext
from agent.engine.loop import Limits, run_loop
from agent.engine.tools import Risk, ToolInput, ToolOutput, tool
from agent.engine.tracing import Tracer
from agent.engine.workflow import (
    _REGISTRY,
    WorkflowDefinition,
    workflow_all,
    workflow_get,
    workflow_register,
)
from agent.models import AgentRun
from tests.factories import TicketFactory, TicketNoteFactory


class ThreadRef(ToolInput):
    ticket_id: int


class Thread(ToolOutput):
    notes: list[str]


class Summary(ToolInput):
    ticket_id: int
    summary: str = Field(min_length=1)


@tool(name="get_thread", risk=Risk.READ, input_model=ThreadRef, output_model=Thread)
def get_thread(ctx: RunContext, args: ThreadRef) -> Thread:
    """Read the ticket's internal notes, oldest first."""
    return Thread(notes=list(ctx.subject.notes.values_list("body", flat=True)))


@tool(
    name="submit_summary",
    risk=Risk.PROPOSE,
    input_model=Summary,
    output_model=Summary,
    outcome="summary",
)
def submit_summary(ctx: RunContext, args: Summary) -> Summary:
    """Finish with a hand-over summary."""
    return args


def summarise_offline(request: ModelRequest) -> ModelTurn:
    """Reads the thread fetched as context and submits a one-line summary."""
    [call] = request.messages[1]["content"]
    [result] = request.messages[2]["content"]
    notes = json.loads(result["content"])["notes"]
    summary = f"{len(notes)} note(s); latest: {notes[-1]}"
    arguments = {"ticket_id": call["input"]["ticket_id"], "summary": summary}
    block = {"type": "tool_use", "id": "t1", "name": "submit_summary", "input": arguments}
    return ModelTurn(content=[block], stop_reason="tool_use")


@pytest.fixture
def summarise():  # type: ignore[no-untyped-def]
    definition = workflow_register(
        WorkflowDefinition(
            name="summarise-thread",
            description="Summarise a ticket thread for hand-over.",
            max_side_effect=Risk.PROPOSE,
            max_side_effect_description="a summary shown to staff",
            tools=(get_thread, submit_summary),
            outcomes=("summary", "safe_stop"),
            system_prompt="Summarise the thread for the next agent on shift.",
            subject_field="ticket_id",
            load_subject=lambda pk: TicketFactory._meta.model.objects.get(pk=pk),
            static_context=lambda: "",
            instructions=lambda ctx: f"Summarise ticket #{ctx.subject_id}.",
            context_calls=lambda ctx: [ToolCall("c1", "get_thread", {"ticket_id": ctx.subject_id})],
            required_context=frozenset(),
            inspect=lambda ctx: set(),
            offline_model=lambda: FunctionModel("summariser-v0", summarise_offline),
        )
    )
    yield definition
    _REGISTRY.pop("summarise-thread")


@pytest.mark.django_db
def test_a_second_workflow_runs_through_the_same_loop_and_policy(summarise) -> None:  # type: ignore[no-untyped-def]
    note = TicketNoteFactory(body="Customer called twice about the export.")
    ticket = note.ticket
    run = AgentRun.objects.create(ticket=ticket, workflow=summarise.name, backend="offline")
    ctx = RunContext(workflow=summarise, subject_id=ticket.pk, subject=ticket)
    backend = OfflineBackend(summarise.offline_model())

    result = run_loop(ctx=ctx, backend=backend, tracer=Tracer(run), limits=Limits())

    assert result.outcome == "summary"
    assert result.output == {
        "ticket_id": ticket.pk,
        "summary": "1 note(s); latest: Customer called twice about the export.",
    }
    assert run.steps.filter(kind="policy_decision", payload__allowed=True).count() == 2
    assert {w.name for w in workflow_all()} >= {"support-triage", "summarise-thread"}


def test_registering_needs_declared_outcomes(summarise) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    with pytest.raises(ValueError, match="already registered"):
        workflow_register(replace(summarise))
    with pytest.raises(ValueError, match="undeclared outcomes"):
        workflow_register(replace(summarise, name="broken", outcomes=("safe_stop",)))
    with pytest.raises(LookupError, match="no workflow named 'nope'"):
        workflow_get("nope")
