"""Every failure mode ends in a traced outcome: guards, model errors, malformed replies, tool
failures, and the model's own refusal."""

import pytest
from django.test import Client
from django.urls import reverse

from agent.engine.backends.base import (
    MalformedReplyError,
    ModelTurn,
    PermanentModelError,
    TransientModelError,
    Usage,
)
from agent.engine.backends.faults import FaultInjectingBackend
from agent.engine.context import FaultPlan, RunContext
from agent.engine.loop import Limits, run_loop
from agent.engine.tracing import Tracer
from agent.engine.workflow import workflow_get
from agent.models import AgentRun, TraceStep, TriageProposal
from agent.services import triage_ticket_run
from agent.workflows.support_triage.definition import SUPPORT_TRIAGE
from agent.workflows.support_triage.subject import ticket_view_load
from tests.agent.scripted import ScriptedBackend, submit, tool_use, turn
from tests.factories import TicketFactory
from tickets.models import ReplyTemplate, Ticket, TicketNote


def _kinds(proposal: TriageProposal) -> list[str]:
    return list(proposal.run.steps.order_by("position").values_list("kind", flat=True))


def _run(
    ticket: Ticket,
    backend,
    *,
    limits: Limits | None = None,
    faults: FaultPlan | None = None,
    clock=None,
    sleep=None,
):  # type: ignore[no-untyped-def]
    workflow = workflow_get("support-triage")
    run = AgentRun.objects.create(ticket=ticket, workflow=workflow.name, backend=backend.name)
    ctx = RunContext(
        workflow=workflow,
        subject_id=ticket.pk,
        subject=ticket_view_load(ticket.pk),
        faults=faults or FaultPlan(),
    )
    extra = {"clock": clock} if clock else {}
    result = run_loop(
        ctx=ctx,
        backend=backend,
        tracer=Tracer(run),
        limits=limits or Limits(retry_base_delay=0),
        sleep=sleep or (lambda s: None),
        **extra,
    )
    return result, ctx, run


def test_a_scripted_proposal_is_stored_with_a_complete_trace(new_ticket: Ticket) -> None:
    backend = ScriptedBackend(submit(new_ticket.pk, urgency="high"))

    proposal = triage_ticket_run(ticket_id=new_ticket.pk, backend=backend)

    assert proposal is not None
    assert (proposal.outcome, proposal.category.slug, proposal.urgency) == (
        "proposal",
        "billing",
        "high",
    )
    assert proposal.status == "pending"
    new_ticket.refresh_from_db()
    assert new_ticket.status == Ticket.Status.AWAITING_REVIEW
    assert new_ticket.category is None  # nothing on the ticket changes before approval
    assert _kinds(proposal) == [
        "intent",
        "policy_decision",
        "context_source",
        "tool_result",  # get_ticket
        "policy_decision",
        "context_source",
        "tool_result",  # list_similar_tickets
        "policy_decision",
        "context_source",
        "tool_result",  # list_reply_templates
        "model_request",
        "model_response",
        "policy_decision",
        "tool_call",
        "tool_result",
        "output",
    ]
    run = proposal.run
    assert (run.status, run.outcome, run.model_calls, run.input_tokens) == (
        "finished",
        "proposal",
        1,
        10,
    )
    assert run.risk_level == "propose"
    assert run.prompt_version == SUPPORT_TRIAGE.prompt_version()
    assert 0 < run.context_chars <= SUPPORT_TRIAGE.context_budget_chars
    assert run.context_left_out == []
    # The model saw the context only as tool results of calls it did not make itself.
    first = backend.requests[0]
    assert [m["role"] for m in first.messages] == ["user", "assistant", "user"]
    assert {b["type"] for b in first.messages[2]["content"]} == {"tool_result"}
    assert "Billing" in first.static_context


def test_a_model_refusal_ends_the_run_without_running_its_tool_calls(new_ticket: Ticket) -> None:
    backend = ScriptedBackend(turn(tool_use("submit_triage", {}), stop_reason="refusal"))

    proposal = triage_ticket_run(ticket_id=new_ticket.pk, backend=backend)

    assert proposal is not None
    assert proposal.outcome == "refusal"
    assert proposal.requires_human_action
    assert not proposal.run.steps.filter(kind="tool_call").exists()
    new_ticket.refresh_from_db()
    assert new_ticket.status == Ticket.Status.NEEDS_MANUAL_TRIAGE


def test_step_limit_is_a_safe_stop(new_ticket: Ticket) -> None:
    looping = [turn(tool_use("list_reply_templates", {"category": None})) for _ in range(3)]
    result, _, _ = _run(new_ticket, ScriptedBackend(*looping), limits=Limits(max_steps=3))

    assert result.outcome == "safe_stop"
    assert result.error == "step limit reached (3 model turns)"


def test_token_budget_is_a_safe_stop(new_ticket: Ticket) -> None:
    big = turn(tool_use("list_reply_templates", {"category": None}), tokens=600)
    result, _, run = _run(new_ticket, ScriptedBackend(big), limits=Limits(token_budget=1000))

    assert result.outcome == "safe_stop"
    assert result.error == "token budget exceeded (1200 > 1000)"
    assert run.steps.filter(kind="error", summary__startswith="Safe stop: token budget").exists()


def test_wall_clock_timeout_is_a_safe_stop(new_ticket: Ticket) -> None:
    now = [0.0]

    def slow(request):  # type: ignore[no-untyped-def]
        now[0] += 30
        return turn(tool_use("list_reply_templates", {"category": None}))

    result, _, _ = _run(
        new_ticket,
        ScriptedBackend(slow, slow, slow),
        limits=Limits(timeout_seconds=50),
        clock=lambda: now[0],
    )

    assert result.outcome == "safe_stop"
    assert result.error == "timed out after 50s"


def test_transient_errors_are_retried_with_traced_backoff(new_ticket: Ticket) -> None:
    backend = ScriptedBackend(
        TransientModelError("429 rate limited", retry_after=0.0),
        TransientModelError("529 overloaded"),
        submit(new_ticket.pk),
    )
    result, _, run = _run(new_ticket, backend)

    assert result.outcome == "proposal"
    assert run.steps.filter(kind="retry").count() == 2
    assert result.model_calls == 3


def test_transient_errors_past_the_bound_are_a_safe_stop(new_ticket: Ticket) -> None:
    backend = ScriptedBackend(*[TransientModelError("503") for _ in range(4)])
    result, _, _ = _run(new_ticket, backend, limits=Limits(max_transient_retries=3))

    assert result.outcome == "safe_stop"
    assert result.error == "model unavailable after 4 attempts: 503"


def test_a_permanent_model_error_stops_at_once(new_ticket: Ticket) -> None:
    result, _, _ = _run(new_ticket, ScriptedBackend(PermanentModelError("401 invalid key")))

    assert result.outcome == "safe_stop"
    assert result.error == "model error: 401 invalid key"


@pytest.mark.parametrize(
    "bad",
    [
        MalformedReplyError("not JSON"),
        ModelTurn(content=None, stop_reason="end_turn"),  # type: ignore[arg-type]
        ModelTurn(content=[{"no": "type"}], stop_reason="end_turn"),
        ModelTurn(content=[{"type": "tool_use", "input": {}}], stop_reason="tool_use"),
        turn({"type": "text", "text": "I think it is billing."}, stop_reason="end_turn"),
    ],
    ids=["not-json", "no-content", "untyped-block", "tool-use-without-id", "no-tool-call"],
)
def test_malformed_replies_are_retried_then_safe_stop(new_ticket: Ticket, bad) -> None:  # type: ignore[no-untyped-def]
    recovered, _, _ = _run(new_ticket, ScriptedBackend(bad, submit(new_ticket.pk)))
    assert recovered.outcome == "proposal"

    hopeless, _, _ = _run(
        new_ticket, ScriptedBackend(bad, bad, bad), limits=Limits(max_malformed_replies=2)
    )
    assert hopeless.outcome == "safe_stop"
    assert hopeless.error.startswith("malformed model output 3 times")


def test_a_tool_that_raises_returns_an_error_result_not_a_crash(
    new_ticket: Ticket, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.workflows.support_triage import tools

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("database on fire")

    monkeypatch.setattr(tools, "reply_template_active_list", broken)
    backend = ScriptedBackend(submit(new_ticket.pk))

    proposal = triage_ticket_run(ticket_id=new_ticket.pk, backend=backend)

    assert proposal is not None
    assert proposal.degraded_context  # templates were part of the context
    error = proposal.run.steps.get(kind="error", name="list_reply_templates")
    assert error.summary == "list_reply_templates failed: internal error (RuntimeError)"
    assert "database on fire" not in str(backend.requests[0].messages)


def test_failing_similar_tickets_gives_a_flagged_degraded_proposal(new_ticket: Ticket) -> None:
    result, ctx, _ = _run(
        new_ticket,
        ScriptedBackend(submit(new_ticket.pk)),
        faults=FaultPlan(tool_faults={"list_similar_tickets": "timeout"}),
    )

    assert result.outcome == "proposal"
    assert "degraded_context" in ctx.flags


def test_failing_get_ticket_is_a_safe_stop_never_invented_context(new_ticket: Ticket) -> None:
    backend = ScriptedBackend(submit(new_ticket.pk))
    result, _, _ = _run(new_ticket, backend, faults=FaultPlan(tool_faults={"get_ticket": "error"}))

    assert result.outcome == "safe_stop"
    assert result.error == "required context unavailable: get_ticket failed"
    assert backend.requests == []  # the model was never asked to work without the ticket
    assert not TicketNote.objects.exists()


@pytest.mark.parametrize("fault", ["malformed_json", "missing_fields", "invalid_tool_input"])
def test_injected_model_faults_are_recovered(new_ticket: Ticket, fault: str) -> None:
    inner = ScriptedBackend(submit(new_ticket.pk), submit(new_ticket.pk))
    result, ctx, run = _run(new_ticket, FaultInjectingBackend(inner, fault=fault))  # type: ignore[arg-type]

    assert result.outcome == "proposal"
    assert ctx.policy_violations == 0
    assert run.steps.filter(
        kind__in=["retry", "policy_decision"], summary__iregex=r"malformed|refuse"
    ).exists()


def test_usage_and_cost_are_recorded(new_ticket: Ticket, settings) -> None:  # type: ignore[no-untyped-def]
    settings.TRIAGE_PRICE_INPUT_PER_MTOK = 1.0
    settings.TRIAGE_PRICE_OUTPUT_PER_MTOK = 5.0
    priced = ModelTurn(
        content=submit(new_ticket.pk).content,
        stop_reason="tool_use",
        usage=Usage(
            input_tokens=1000, output_tokens=200, cache_read_tokens=4000, cache_write_tokens=0
        ),
        latency_ms=850,
    )
    proposal = triage_ticket_run(ticket_id=new_ticket.pk, backend=ScriptedBackend(priced))

    run = AgentRun.objects.get(pk=proposal.run_id)  # type: ignore[union-attr]
    assert (run.input_tokens, run.output_tokens, run.cache_read_tokens) == (1000, 200, 4000)
    assert str(run.cost_usd) == "0.002400"  # 1000*1 + 200*5 + 4000*0.1, per million
    assert run.latency_ms == 850


def test_trace_steps_are_masked(history, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    from tickets.services import ticket_ingest

    key = "sk-ant-api03-" + "Hq7Rz2kVw9Lp4Tn8Xb3Cf6Md1Gs5Yj0Ua2Ee7Kt9"
    with django_capture_on_commit_callbacks(execute=True):
        ticket = ticket_ingest(
            subject="Shopify sync keeps failing",
            body=f"My key is {key}, password: Hunter2!x, call +44 20 7946 0958.",
            requester_email="owner@example.com",
        ).ticket

    stored = " ".join(
        str(p)
        for p in TraceStep.objects.filter(run__ticket=ticket).values_list("payload", flat=True)
    )
    assert "[REDACTED:api_key]" in stored
    for secret in (key, "Hunter2!x", "7946 0958", "owner@example.com"):
        assert secret not in stored


def test_context_over_budget_leaves_sources_out_in_order(new_ticket: Ticket) -> None:
    from dataclasses import replace

    workflow = replace(workflow_get("support-triage"), context_budget_chars=400)
    run = AgentRun.objects.create(ticket=new_ticket, workflow=workflow.name, backend="scripted")
    ctx = RunContext(
        workflow=workflow, subject_id=new_ticket.pk, subject=ticket_view_load(new_ticket.pk)
    )
    backend = ScriptedBackend(submit(new_ticket.pk))

    result = run_loop(ctx=ctx, backend=backend, tracer=Tracer(run), limits=Limits())

    assert result.outcome == "proposal"
    assert "degraded_context" in ctx.flags
    sent = backend.requests[0].messages[2]["content"]
    assert sent[0]["is_error"] is False  # the ticket itself is always kept
    assert any(block["content"] == "Left out: over the context budget." for block in sent)
    assert run.steps.filter(kind="error", summary__contains="exceed the context budget").exists()
    assert result.context_left_out == ["list_similar_tickets", "list_reply_templates"]
    assert result.context_chars == len(sent[0]["content"])  # what was kept


def test_the_servers_retry_after_is_honoured_up_to_the_deadline(new_ticket: Ticket) -> None:
    """A 429 that asks for 20 s is waited out in full (it was cut to 8 s); one that asks for
    longer than the run has left ends the run at once, as a traced safe stop."""
    waits: list[float] = []

    def run_with(*turns, timeout: float):  # type: ignore[no-untyped-def]
        now = [0.0]

        def sleep(seconds: float) -> None:
            waits.append(seconds)
            now[0] += seconds

        limits = Limits(timeout_seconds=timeout, retry_base_delay=0)
        result, _, run = _run(
            new_ticket, ScriptedBackend(*turns), limits=limits, clock=lambda: now[0], sleep=sleep
        )
        return result, run

    waited, _ = run_with(
        TransientModelError("429", retry_after=20.0), submit(new_ticket.pk), timeout=60
    )
    assert waited.outcome == "proposal"
    assert waits == [20.0]

    stopped, run = run_with(TransientModelError("429", retry_after=90.0), timeout=60)
    assert stopped.outcome == "safe_stop"
    assert "asked to wait 90s, beyond the run's deadline (60s left)" in stopped.error
    assert waits == [20.0]  # no sleep into the timeout
    assert run.steps.filter(kind="error", summary__contains="beyond the run's deadline").exists()


def test_the_run_timeout_stays_below_the_sweepers_threshold(settings, db) -> None:  # type: ignore[no-untyped-def]
    from django.core.exceptions import ValidationError

    from agent.models import AgentSettings

    settings.TRIAGE_STALE_AFTER_SECONDS = 300
    AgentSettings(timeout_seconds=240).full_clean()
    with pytest.raises(ValidationError) as raised:
        AgentSettings(timeout_seconds=600).full_clean()
    assert "At most 240 s" in str(raised.value.message_dict["timeout_seconds"])


# --- degraded context: every tool failure or missing context is flagged and said (issue 11,
# defect 5) -----------------------------------------------------------------------------------


def test_a_template_saved_before_validation_flags_the_proposal_and_the_reviewer_sees_why(
    new_ticket: Ticket, client: Client, reviewer
) -> None:  # type: ignore[no-untyped-def]
    """The offline agent picks the billing template, saved (before templates were checked)
    with a literal brace: the draft tool fails, the proposal is flagged ``degraded_context``
    with the tool's message, the note says the template could not be filled (not that none
    fits), and the review page shows why."""
    template = ReplyTemplate.objects.get(category__slug="billing")
    ReplyTemplate.objects.filter(pk=template.pk).update(body='Got {"code": 404} for {ticket_ref}')

    proposal = triage_ticket_run(ticket_id=new_ticket.pk)

    assert proposal is not None
    assert proposal.outcome == "proposal"
    assert proposal.degraded_context
    [why] = proposal.degraded_reasons
    assert why.startswith(f"draft_reply failed: template {template.pk} (Duplicate charge) cannot")
    assert "The reply template could not be filled" in proposal.draft_note
    assert "No reply template fits" not in proposal.draft_note
    client.force_login(reviewer)
    page = client.get(reverse("admin:agent_triageproposal_change", args=[proposal.pk]))
    assert "Worked on incomplete context" in page.content.decode()
    assert f"draft_reply failed: template {template.pk} (Duplicate charge)" in (
        page.content.decode()
    )


def test_a_failing_similar_ticket_search_is_flagged_with_its_reason(
    new_ticket: Ticket, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.workflows.support_triage import tools

    def broken(**kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("index on fire")

    monkeypatch.setattr(tools, "similar_tickets_for_text", broken)

    proposal = triage_ticket_run(
        ticket_id=new_ticket.pk, backend=ScriptedBackend(submit(new_ticket.pk))
    )

    assert proposal is not None
    assert proposal.degraded_context
    assert proposal.degraded_reasons == [
        "list_similar_tickets failed: internal error (RuntimeError)"
    ]
    assert proposal.similar_tickets == []


def test_a_failing_draft_tool_flags_the_proposal(new_ticket: Ticket) -> None:
    template = ReplyTemplate.objects.get(category__slug="billing")
    draft = turn(tool_use("draft_reply", {"ticket_id": new_ticket.pk, "template_id": template.pk}))
    backend = ScriptedBackend(draft, submit(new_ticket.pk))

    result, ctx, _ = _run(
        new_ticket, backend, faults=FaultPlan(tool_faults={"draft_reply": "error"})
    )

    assert result.outcome == "proposal"
    assert ctx.degraded == ["draft_reply failed: draft_reply is unavailable (upstream error)"]
    assert "degraded_context" in ctx.flags


def test_a_rejected_answer_is_not_degraded_context(new_ticket: Ticket) -> None:
    """A terminal tool refusing the model's answer (an unknown category) is the model's error,
    which it corrects: the context was complete, and nothing is flagged."""
    backend = ScriptedBackend(submit(new_ticket.pk, category="nope"), submit(new_ticket.pk))

    proposal = triage_ticket_run(ticket_id=new_ticket.pk, backend=backend)

    assert proposal is not None
    assert proposal.run.steps.filter(kind="error", name="submit_triage").exists()
    assert not proposal.degraded_context
    assert proposal.degraded_reasons == []


def test_a_ticket_cut_to_the_body_limit_is_degraded_context(history) -> None:  # type: ignore[no-untyped-def]
    ticket = TicketFactory(subject="Long log", body="line of a very long log\n" * 500)

    proposal = triage_ticket_run(ticket_id=ticket.pk, backend=ScriptedBackend(submit(ticket.pk)))

    assert proposal is not None
    assert proposal.degraded_context
    assert proposal.degraded_reasons == [
        "get_ticket: the body was cut to 8,000 of 12,000 characters"
    ]


def test_a_source_left_out_over_the_budget_says_so(new_ticket: Ticket) -> None:
    from dataclasses import replace

    workflow = replace(workflow_get("support-triage"), context_budget_chars=400)
    ctx = RunContext(
        workflow=workflow, subject_id=new_ticket.pk, subject=ticket_view_load(new_ticket.pk)
    )
    run = AgentRun.objects.create(ticket=new_ticket, workflow=workflow.name, backend="scripted")

    run_loop(
        ctx=ctx, backend=ScriptedBackend(submit(new_ticket.pk)), tracer=Tracer(run), limits=Limits()
    )

    assert [why.split(":")[0] for why in ctx.degraded] == [
        "list_similar_tickets left out",
        "list_reply_templates left out",
    ]
