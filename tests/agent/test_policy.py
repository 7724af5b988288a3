"""The policy refuses, traces, and nothing is written: forbidden and unknown tools, invalid
arguments, another ticket's id, and a risk above the workflow's maximum side effect."""

from dataclasses import replace

import pytest

from agent.engine.tools import SUBJECT, Risk, ToolOutput, tool
from agent.engine.workflow import _REGISTRY, workflow_get, workflow_register
from agent.models import TraceStep
from agent.services import triage_ticket_run
from agent.workflows.support_triage.tools import TicketRef
from tests.agent.scripted import ScriptedBackend, submit, tool_use, turn
from tickets.models import ChangeRecord, Ticket, TicketNote


class Sent(ToolOutput):
    sent: bool


@tool(
    name="send_email", risk=Risk.EXTERNAL, input_model=TicketRef, output_model=Sent, scope=SUBJECT
)
def send_email(ctx, args):  # type: ignore[no-untyped-def]
    """Send an e-mail to the customer (exists only in a test workflow)."""
    raise AssertionError("the policy must never let this run")


@pytest.fixture
def mailer_workflow():  # type: ignore[no-untyped-def]
    """Another workflow that owns a tool support-triage does not have."""
    definition = replace(workflow_get("support-triage"), name="test-mailer", tools=(send_email,))
    workflow_register(definition)
    yield definition
    _REGISTRY.pop("test-mailer")


def _refusals(ticket: Ticket) -> list[str]:
    return list(
        TraceStep.objects.filter(run__ticket=ticket, kind="policy_decision", payload__allowed=False)
        .order_by("position")
        .values_list("summary", flat=True)
    )


def _assert_ticket_untouched(ticket: Ticket) -> None:
    ticket.refresh_from_db()
    assert ticket.category is None
    assert ticket.urgency == ""
    assert not TicketNote.objects.filter(ticket=ticket).exists()
    assert not ChangeRecord.objects.exists()


@pytest.mark.parametrize(
    ("make_call", "expected"),
    [
        (
            lambda pk: tool_use("send_email", {"ticket_id": pk}),
            "not available in workflow support-triage",
        ),
        (lambda pk: tool_use("delete_ticket", {"ticket_id": pk}), "unknown tool 'delete_ticket'"),
        (
            lambda pk: tool_use("submit_triage", {"ticket_id": pk, "category": "billing"}),
            "invalid arguments: urgency: Field required",
        ),
        (
            lambda pk: tool_use("get_ticket", {"ticket_id": pk, "admin": True}),
            "invalid arguments: admin: Extra inputs are not permitted",
        ),
        (lambda pk: tool_use("get_ticket", "not an object"), "invalid arguments"),
        (lambda pk: tool_use("get_ticket", {"ticket_id": pk + 1000}), "is not the one under work"),
    ],
    ids=[
        "forbidden-tool",
        "unknown-tool",
        "missing-arguments",
        "extra-argument",
        "not-an-object",
        "another-ticket",
    ],
)
def test_policy_refuses_and_traces_and_nothing_is_written(
    new_ticket: Ticket,
    mailer_workflow,
    make_call,
    expected: str,  # type: ignore[no-untyped-def]
) -> None:
    backend = ScriptedBackend(turn(make_call(new_ticket.pk)), submit(new_ticket.pk))

    proposal = triage_ticket_run(ticket_id=new_ticket.pk, backend=backend)

    refusals = _refusals(new_ticket)
    assert len(refusals) == 1
    assert expected in refusals[0]
    # The refusal went back to the model as an error result, and the run went on.
    result_block = backend.requests[1].messages[-1]["content"][0]
    assert result_block["is_error"] is True
    assert result_block["content"].startswith("Refused by policy")
    assert proposal is not None
    assert proposal.outcome == "proposal"
    _assert_ticket_untouched(new_ticket)


def test_a_tool_above_the_maximum_side_effect_is_refused(new_ticket: Ticket) -> None:
    triage = workflow_get("support-triage")
    risky = replace(triage, tools=(*triage.tools, send_email))
    _REGISTRY["support-triage"] = risky
    try:
        backend = ScriptedBackend(
            turn(tool_use("send_email", {"ticket_id": new_ticket.pk})), submit(new_ticket.pk)
        )
        triage_ticket_run(ticket_id=new_ticket.pk, backend=backend)
    finally:
        _REGISTRY["support-triage"] = triage

    [refusal] = _refusals(new_ticket)
    assert "risk external, above this workflow's maximum side effect (propose)" in refusal
    _assert_ticket_untouched(new_ticket)


def test_violations_are_counted_but_invalid_arguments_are_not(new_ticket: Ticket) -> None:
    from agent.engine.backends.base import ToolCall
    from agent.engine.context import RunContext
    from agent.policy import policy_decide

    ctx = RunContext(
        workflow=workflow_get("support-triage"), subject_id=new_ticket.pk, subject=None
    )

    unknown = policy_decide(call=ToolCall("1", "wire_money", {}), ctx=ctx)
    invalid = policy_decide(call=ToolCall("2", "get_ticket", {}), ctx=ctx)
    allowed = policy_decide(call=ToolCall("3", "get_ticket", {"ticket_id": new_ticket.pk}), ctx=ctx)

    assert (unknown.allowed, unknown.violation) == (False, True)
    assert (invalid.allowed, invalid.violation) == (False, False)
    assert allowed.allowed
    assert allowed.arguments is not None
    assert allowed.arguments.model_dump() == {"ticket_id": new_ticket.pk}
