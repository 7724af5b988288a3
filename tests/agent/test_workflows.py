"""A second workflow plugs into the same engine without touching the loop, policy or backends."""

import json

import pytest
from pydantic import Field

from agent.engine.backends.base import ModelRequest, ModelTurn, ToolCall
from agent.engine.backends.offline import FunctionModel, OfflineBackend
from agent.engine.context import RunContext
from agent.engine.loop import Limits, run_loop
from agent.engine.tools import SUBJECT, Risk, ToolInput, ToolOutput, tool
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


@tool(name="get_thread", risk=Risk.READ, input_model=ThreadRef, output_model=Thread, scope=SUBJECT)
def get_thread(ctx: RunContext, args: ThreadRef) -> Thread:
    """Read the ticket's internal notes, oldest first."""
    return Thread(notes=list(ctx.subject.notes.values_list("body", flat=True)))


@tool(
    name="submit_summary",
    risk=Risk.PROPOSE,
    input_model=Summary,
    output_model=Summary,
    outcome="summary",
    scope=SUBJECT,
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


class Shared(ToolInput):
    topic: str = ""


@pytest.mark.parametrize(
    ("scope", "input_model", "error"),
    [
        (None, ThreadRef, "declares no scope"),
        (SUBJECT, Shared, "scoped to the subject but has no required ticket_id"),
        ("unscoped", ThreadRef, "declares no subject but takes a ticket_id"),
    ],
)
def test_every_tool_declares_its_scope_and_its_input_agrees(
    summarise, scope, input_model, error
) -> None:  # type: ignore[no-untyped-def]
    """A tool without a subject field was once taken as scoped to the subject under work,
    silently; now each tool says what it touches, and registration checks it."""
    from dataclasses import replace

    from agent.engine.tools import unscoped

    declared = unscoped("reads shared data") if scope == "unscoped" else scope
    odd = replace(get_thread, name="odd_tool", input_model=input_model, scope=declared)

    with pytest.raises(ValueError, match=error):
        workflow_register(replace(summarise, name="odd", tools=(*summarise.tools, odd)))
    assert "odd" not in _REGISTRY
    with pytest.raises(ValueError, match="must say why"):
        unscoped(" ")


@pytest.mark.django_db
def test_an_unscoped_tool_runs_without_a_subject_and_a_scoped_one_needs_its_own(summarise) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from agent.engine.tools import unscoped
    from agent.policy import policy_decide

    shared = replace(get_thread, name="read_shared", input_model=Shared, scope=unscoped("shared"))
    workflow = replace(summarise, name="with-shared", tools=(*summarise.tools, shared))
    ticket = TicketFactory()
    ctx = RunContext(workflow=workflow, subject_id=ticket.pk, subject=ticket)

    assert policy_decide(call=ToolCall("1", "read_shared", {"topic": "x"}), ctx=ctx).allowed
    other = policy_decide(call=ToolCall("2", "get_thread", {"ticket_id": ticket.pk + 1}), ctx=ctx)
    assert (other.allowed, other.violation) == (False, True)
    missing = policy_decide(call=ToolCall("3", "get_thread", {}), ctx=ctx)
    assert not missing.allowed  # a scoped tool must name its subject
