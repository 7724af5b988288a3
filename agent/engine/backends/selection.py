"""Which model backend a run uses."""

from django.conf import settings

from agent.engine.backends.base import ModelBackend
from agent.engine.backends.offline import OfflineBackend
from agent.engine.workflow import WorkflowDefinition

BACKENDS = ("offline", "anthropic")


def backend_for(workflow: WorkflowDefinition, name: str | None = None) -> ModelBackend:
    """The backend called ``name``, else ``TRIAGE_AGENT_BACKEND`` (which defaults to
    ``anthropic`` when an API key is set, else ``offline``)."""
    chosen = name or settings.TRIAGE_AGENT_BACKEND
    if chosen == "offline":
        return OfflineBackend(workflow.offline_model())
    if chosen == "anthropic":
        from agent.engine.backends.anthropic import anthropic_backend_from_settings

        return anthropic_backend_from_settings()
    raise ValueError(f"unknown backend {chosen!r}; choose one of {', '.join(BACKENDS)}")
