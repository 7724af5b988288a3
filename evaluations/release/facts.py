"""What the release check reads, gathered once from the live system: the registered workflow,
its limits, the backend it would run on, the current versions, recent production runs with their
traces, and the self-tests' findings."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Prefetch
from django.utils import timezone

from agent.engine.backends.selection import backend_for
from agent.engine.loop import Limits
from agent.engine.workflow import WorkflowDefinition, workflow_get
from agent.models import AgentRun, AgentSettings, TraceStep
from agent.selectors import agent_settings_get
from agent.services import limits_from
from evaluations.release.gate import RECENT_RUNS
from evaluations.release.sandbox import SandboxReport, sandbox_run
from evaluations.versions import code_version, database_label, git_commit


@dataclass(frozen=True)
class Facts:
    workflow: WorkflowDefinition
    agent_settings: AgentSettings
    limits: Limits
    backend: str
    model: str
    prompt_version: str
    code_version: str
    commit: str
    database: str
    recent_runs: list[AgentRun]  # finished production runs, newest first, steps prefetched
    sandbox: SandboxReport
    checked_at: datetime


def facts_gather(*, workflow_name: str) -> Facts:
    """Raises ``LookupError`` for an unknown workflow."""
    workflow = workflow_get(workflow_name)
    agent_settings = agent_settings_get()
    backend = backend_for(workflow)
    recent = (
        AgentRun.objects.filter(
            workflow=workflow.name,
            purpose=AgentRun.Purpose.TRIAGE,
            status=AgentRun.Status.FINISHED,
        )
        .select_related("proposal")
        .prefetch_related(Prefetch("steps", queryset=TraceStep.objects.order_by("position")))
        .order_by("-finished_at", "-id")[:RECENT_RUNS]
    )
    return Facts(
        workflow=workflow,
        agent_settings=agent_settings,
        limits=limits_from(agent_settings),
        backend=settings.TRIAGE_AGENT_BACKEND,
        model=backend.model,
        prompt_version=workflow.prompt_version(),
        code_version=code_version(),
        commit=git_commit(),
        database=database_label(),
        recent_runs=list(recent),
        sandbox=sandbox_run(workflow=workflow),
        checked_at=timezone.now(),
    )
