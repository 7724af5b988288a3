"""The support-triage workflow: its tools, context, retrieval, prompt and offline heuristics.
Importing the package registers the workflow."""

from agent.engine.workflow import workflow_register
from agent.workflows.support_triage.definition import SUPPORT_TRIAGE

workflow_register(SUPPORT_TRIAGE)
