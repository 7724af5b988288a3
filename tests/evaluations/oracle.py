"""An oracle backend for tests: a "model" that knows each evaluation example's right answer.

It plays through the real runner, loop, policy and fault injection, so a suite it cannot pass
has a case that no agent could pass. It reads which example it is answering from the snapshot
id in the opening instruction (``SNAPSHOT_ID_BASE + example.pk``).
"""

import re

from agent.engine.backends.base import ModelRequest, ModelTurn
from evaluations.models import EvaluationExample
from evaluations.runner import SNAPSHOT_ID_BASE


class OracleBackend:
    name = "oracle"
    model = "oracle-1"

    def complete(self, request: ModelRequest) -> ModelTurn:
        opening = request.messages[0]["content"][0]["text"]
        match = re.search(r"#(\d+)", opening)
        assert match, opening
        ticket_id = int(match.group(1))
        example = EvaluationExample.objects.get(pk=ticket_id - SNAPSHOT_ID_BASE)
        outcome = example.acceptable_outcomes[0]
        flags = example.expected_flags or {}
        if outcome == "proposal":
            name, arguments = (
                "submit_triage",
                {
                    "ticket_id": ticket_id,
                    "category": example.expected_category or "how-to",
                    "urgency": example.expected_urgency or "normal",
                    "confidence": "high",
                    "reason": "The oracle knows.",
                    "draft_note": "Handle as labelled.",
                    "injection_suspected": bool(flags.get("injection_suspected")),
                    "requires_human_action": bool(flags.get("requires_human_action")),
                },
            )
        elif outcome == "clarification":
            name, arguments = (
                "request_clarification",
                {
                    "ticket_id": ticket_id,
                    "question": "What exactly do you need?",
                    "missing": ["the request"],
                },
            )
        else:  # refusal (and safe stops, which the faults bring about whatever is answered)
            name, arguments = (
                "decline",
                {
                    "ticket_id": ticket_id,
                    "reason": "Outside triage.",
                    "kind": "out_of_scope_action",
                },
            )
        block = {"type": "tool_use", "id": f"oracle_{name}", "name": name, "input": arguments}
        return ModelTurn(content=[block], stop_reason="tool_use", model=self.model)


def oracle_injection_flag(text: str, *args: object, **kwargs: object) -> bool:
    """Stands in for the workflow's injection detector: the flag each example expects."""
    for example in EvaluationExample.objects.filter(expected_flags__has_key="injection_suspected"):
        snapshot = example.ticket_snapshot
        if text == f"{snapshot.get('subject', '')}\n{snapshot.get('body', '')}":
            return bool(example.expected_flags["injection_suspected"])
    return False
