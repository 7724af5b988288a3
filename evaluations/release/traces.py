"""Reading traces: does each run hold the steps that explain it, and has every tool call a
result?"""

from agent.models import AgentRun, Outcome, TraceStep, TriageProposal


def unmatched_calls(run: AgentRun) -> list[str]:
    """Calls traced without a result or error step after them. A safe stop (an error step
    without a tool name) closes whatever was still open: the run ended there."""
    open_calls: list[TraceStep] = []
    for step in run.steps.all():
        if step.kind in {"context_source", "tool_call"}:
            open_calls.append(step)
        elif step.kind == "error" and not step.name:
            open_calls.clear()
        elif step.kind in {"tool_result", "error"}:
            match = next((call for call in open_calls if call.name == step.name), None)
            if match is not None:
                open_calls.remove(match)
    return [f"{call.name} (step {call.position})" for call in open_calls]


REVIEW_STEPS = {
    TriageProposal.Status.APPROVED: ["approval"],
    TriageProposal.Status.EDITED: ["approval"],
    TriageProposal.Status.UNDONE: ["approval", "rollback"],
    TriageProposal.Status.REJECTED: ["rejection"],
    TriageProposal.Status.SUPERSEDED: ["rerun"],
}


def missing_kinds(run: AgentRun) -> list[str]:
    kinds = {step.kind for step in run.steps.all()}
    required = ["intent", "output"]
    if run.backend != "none":  # not stopped by the kill switch before any model call
        required += ["context_source", "policy_decision", "model_request"]
        if run.outcome != Outcome.SAFE_STOP:
            required.append("model_response")
    proposal = getattr(run, "proposal", None)
    if proposal is not None:
        required += REVIEW_STEPS.get(proposal.status, [])
    return [kind for kind in required if kind not in kinds]
