"""python manage.py run_evals on the anthropic backend, through the real SDK against a local fake
Messages API (transactional: the examples are evaluated in threads, each with its own
connection, so it cannot share a module with the seeded demo's transaction)."""

import pytest
from django.core.management import call_command

from evaluations.models import EvaluationRun
from tests.factories import evaluation_example


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_claude_suite_runs_with_bounded_concurrency(settings) -> None:  # type: ignore[no-untyped-def]
    """The anthropic backend through the real SDK against a local fake Messages API, with
    examples evaluated in parallel threads; tokens and cost are summed into the run."""
    import threading

    from tests.agent.fake_anthropic import FakeMessagesAPI, RecordedRequest, message, tool_use
    from tests.factories import CategoryFactory

    CategoryFactory(slug="billing")
    in_flight, peak, lock = [0], [0], threading.Lock()

    def classify(request: RecordedRequest) -> dict:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        try:
            import time

            time.sleep(0.2)  # a slow model, so that calls overlap
            ticket_id = request.body["messages"][1]["content"][0]["input"]["ticket_id"]
            return message(
                tool_use(
                    "submit_triage",
                    {
                        "ticket_id": ticket_id,
                        "category": "billing",
                        "urgency": "high",
                        "confidence": "high",
                        "reason": "Double charge.",
                        "draft_note": "Refund it.",
                    },
                ),
                input_tokens=1000,
                output_tokens=100,
            )
        finally:
            with lock:
                in_flight[0] -= 1

    for n in range(4):
        evaluation_example(
            "claude", f"Charged twice #{n}", "Refund the duplicate charge.", "billing", "high"
        )
    api = FakeMessagesAPI([classify] * 4)
    with api as base_url:
        settings.ANTHROPIC_API_KEY = "test-key"
        settings.ANTHROPIC_BASE_URL = base_url
        call_command(
            "run_evals", "--suite", "claude", "--backend", "anthropic", "--concurrency", "2"
        )

    run = EvaluationRun.objects.get(suite="claude")
    assert run.backend == "anthropic"
    assert run.metrics["pass_rate"] == 1.0
    assert run.metrics["tokens"] == {"input": 4000, "output": 400}
    assert run.metrics["cost_usd"] == pytest.approx(4 * (1000 * 1.0 + 100 * 5.0) / 1e6)
    assert len(api.requests) == 4
    assert peak[0] == 2  # bounded: never more than --concurrency calls at once
